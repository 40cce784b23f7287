"""The Engine: runs steps, gates and rollbacks over a journal; the run snapshot views render."""

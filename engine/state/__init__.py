"""What survives a crash: the journal and its typed resume records, the lock, private files."""

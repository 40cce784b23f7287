"""The one error of the state layer: a journal (or a record in it) that cannot be used."""


class JournalError(Exception):
    """The journal cannot be used as it is (corrupt, wrong target, changed runbook)."""

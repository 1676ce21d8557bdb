class GenkitError(Exception):
    """A user mistake (bad argument, missing file...). The CLI prints it as one line and exits non-zero."""

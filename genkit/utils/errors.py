class GenkitError(Exception):
    """A user mistake (bad argument, missing file...). The CLI prints it as one line and exits non-zero."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none), for a one-line error."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__

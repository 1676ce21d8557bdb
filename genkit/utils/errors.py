import contextlib
import zipfile
from collections.abc import Iterator


class GenkitError(Exception):
    """A user mistake (bad argument, missing file...). The CLI prints it as one line and exits non-zero."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none), for a one-line error."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# what reading a broken or wrong file raises: JSON and numpy (ValueError), missing fields (KeyError,
# IndexError, AttributeError, TypeError), zip archives (npz), missing files (OSError), torch and diffusers
# loaders (RuntimeError, OSError)
READ_ERRORS = (
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    TypeError,
    OSError,
    RuntimeError,
    zipfile.BadZipFile,
)


@contextlib.contextmanager
def reading(what: str, errors: tuple[type[BaseException], ...] = READ_ERRORS) -> Iterator[None]:
    """``with reading(f"cannot read {path}"): ...``: an error of ``errors`` that a user's file causes while it
    is read becomes one GenkitError, "``what``: <type>: <first line>"; a GenkitError passes as it is."""
    try:
        yield
    except GenkitError:
        raise
    except errors as e:
        raise GenkitError(f"{what}: {type(e).__name__}: {first_line(e)}") from None

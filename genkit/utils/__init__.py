"""Small shared utilities: user-facing errors and atomic file output."""

from genkit.utils.errors import GenkitError, reading
from genkit.utils.io import (
    VIDEO,
    atomic_dir,
    atomic_file,
    ensure_writable_dir,
    image_grid,
    output_file,
    write_video,
)

__all__ = [
    "GenkitError",
    "atomic_dir",
    "atomic_file",
    "ensure_writable_dir",
    "image_grid",
    "output_file",
    "reading",
    "VIDEO",
    "write_video",
]

"""Small shared utilities: user-facing errors and atomic file output."""

from genkit.utils.errors import GenkitError
from genkit.utils.io import atomic_dir, atomic_file, ensure_writable_dir, video_path, write_video

__all__ = ["GenkitError", "atomic_dir", "atomic_file", "ensure_writable_dir", "video_path", "write_video"]

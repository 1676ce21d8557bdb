"""Atomic outputs: write to a temporary sibling, then rename, so a failure never leaves a half-written file."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from genkit.utils.errors import GenkitError


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and check that files can be written in it; raise GenkitError if not."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise GenkitError(f"output path {str(p)!r} exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".genkit-probe-"):
            pass
    except OSError as e:
        raise GenkitError(f"cannot write to output folder {str(p)!r}: {e.strerror or e}") from None
    return p


def _not_a_folder(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        raise GenkitError(f"output path {str(p)!r} is a folder; give a file name")
    return p


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``, on error removed.
    A folder at ``path`` is an error (GenkitError), before anything is written."""
    path = _not_a_folder(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or path.suffix)
    os.close(fd)
    os.chmod(tmp, 0o644)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path`` (a folder: a previous
    output), on error it is removed. A file at ``path`` is an error (GenkitError), before anything is written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GenkitError(f"output path {str(path)!r} exists and is not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old."))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


VIDEO = (".mp4", ".gif")


def output_file(path: str | os.PathLike, suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` checked as a file to write, before the work that makes it: ending in one of ``suffixes``
    (any when empty), not a folder, in a folder that can be made and written; GenkitError otherwise."""
    p = _not_a_folder(path)
    if suffixes and p.suffix.lower() not in suffixes:
        raise GenkitError(f"--out must end in {' or '.join(suffixes)}, got {str(path)!r}")
    ensure_writable_dir(p.parent)
    return p


def write_video(path: str | os.PathLike, frames, fps: int) -> Path:
    """Write (T, H, W, 3) uint8 ``frames`` as ``.mp4`` or ``.gif`` (by the suffix) through imageio, atomically."""
    import imageio.v3 as iio
    import numpy as np

    path = output_file(path, VIDEO)
    with atomic_file(path) as tmp:
        if path.suffix.lower() == ".gif":
            iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=1000 / fps, loop=0)
        else:
            iio.imwrite(tmp, np.stack(frames), extension=".mp4", fps=fps)
    return path


def image_grid(images, rows: int, scale: int):
    """(N, H, W, 3) uint8 -> one (rows*H, cols*W, 3) grid with 2-pixel gutters, upscaled by ``scale``."""
    import numpy as np

    n, h, w, _ = images.shape
    cols = -(-n // rows)
    g = 2
    grid = np.full((rows * (h + g) + g, cols * (w + g) + g, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid[g + r * (h + g) : g + r * (h + g) + h, g + c * (w + g) : g + c * (w + g) + w] = im
    return grid.repeat(scale, 0).repeat(scale, 1)

"""Atomic outputs (genkit.utils.io): all or nothing, and a user's file or folder is never replaced by the
other kind."""

import pytest

from genkit.utils import GenkitError
from genkit.utils.io import VIDEO, atomic_dir, atomic_file, output_file


def test_atomic_file_replaces_on_success_and_keeps_the_old_on_error(tmp_path):
    out = tmp_path / "a.txt"
    with atomic_file(out) as tmp:
        tmp.write_text("one")
    assert out.read_text() == "one"
    with pytest.raises(RuntimeError), atomic_file(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert out.read_text() == "one" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_dir_replaces_a_previous_output_and_keeps_it_on_error(tmp_path):
    out = tmp_path / "run"
    with atomic_dir(out) as tmp:
        (tmp / "x").write_text("one")
    with atomic_dir(out) as tmp:
        (tmp / "y").write_text("two")
    assert [p.name for p in out.iterdir()] == ["y"]
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "z").write_text("half")
        raise RuntimeError("killed")
    assert [p.name for p in out.iterdir()] == ["y"] and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_an_output_of_the_other_kind_is_an_error_and_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(GenkitError, match="exists and is not a folder"), atomic_dir(tmp_path / "notes.txt"):
        pass
    assert (tmp_path / "notes.txt").read_text() == "mine"
    (tmp_path / "video.mp4").mkdir()
    (tmp_path / "video.mp4" / "keep").write_text("mine")
    with pytest.raises(GenkitError, match="is a folder"), atomic_file(tmp_path / "video.mp4"):
        pass
    assert (tmp_path / "video.mp4" / "keep").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "video.mp4"]


def test_output_file_is_checked_before_the_work(tmp_path):
    assert output_file(tmp_path / "new" / "a.mp4", VIDEO) == tmp_path / "new" / "a.mp4"
    (tmp_path / "file").write_text("mine")
    (tmp_path / "dir.gif").mkdir()
    for path, message in (
        (tmp_path / "a.txt", "must end in .mp4 or .gif"),
        (tmp_path / "dir.gif", "is a folder"),
        (tmp_path / "file" / "a.mp4", "exists and is not a folder"),
    ):
        with pytest.raises(GenkitError, match=message):
            output_file(path, VIDEO)
    assert (tmp_path / "file").read_text() == "mine"

"""`bitmaps_runtime.atomic.atomic_file`: the one rule for writing files (packed models, predictions,
result JSON): whole or not at all."""
import os
import stat

import pytest

from bitmaps_runtime.atomic import atomic_file


def test_an_interrupted_write_leaves_the_earlier_file_and_nothing_else(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"the earlier file")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(target, "wb") as out:
            out.write(b"half of the new")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"the earlier file"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_a_finished_write_replaces_the_file_with_the_mode_open_gives(tmp_path):
    target = tmp_path / "lines.jsonl"
    target.write_text("old\n")
    with atomic_file(target, "w", encoding="utf-8") as out:
        out.write("new é\n")
        assert target.read_text() == "old\n"  # not before the block ends
    assert target.read_text(encoding="utf-8") == "new é\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["lines.jsonl"]

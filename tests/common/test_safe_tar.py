"""Archives whose members would land outside the extraction folder are refused, both by the
filter itself and through AllenNLP's own `load_archive`, once the plugin is imported."""
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from allennlp.models.archival import load_archive

from bitmaps_allennlp.common import UnsafeArchiveMember


def _file(name: str, data: bytes = b"owned\n") -> tuple:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, io.BytesIO(data)


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _special(name: str, kind) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info, None


def _archive(path: Path, members) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(*_file("config.json", b"{}"))
        for info, data in members:
            tar.addfile(info, data)
    return path


def _attacks(outside: Path):
    """(id, members, the path outside the folder an unsafe extraction would write)"""
    target = outside / "owned.txt"
    return [
        ("dotdot", [_file(f"../{outside.name}/owned.txt")], target),
        ("deep-dotdot", [_file(f"vocabulary/../../{outside.name}/owned.txt")], target),
        ("absolute", [_file(str(target))], target),
        ("symlink-absolute", [_link("out", str(outside)), _file("out/owned.txt")], target),
        ("symlink-dotdot", [_link("up", ".."), _file(f"up/{outside.name}/owned.txt")], target),
        # a downward link to a link that climbs: refused at the climbing link
        ("symlink-chain", [_link("a", "b"), _link("b", f"../{outside.name}"), _file("a/owned.txt")], target),
        ("hardlink-absolute", [_link("passwd", str(outside / "secret.txt"), tarfile.LNKTYPE)], None),
        ("hardlink-dotdot", [_link("passwd", f"../{outside.name}/secret.txt", tarfile.LNKTYPE)], None),
        ("char-device", [_special("null", tarfile.CHRTYPE)], None),
        ("block-device", [_special("disk", tarfile.BLKTYPE)], None),
        ("fifo", [_special("pipe", tarfile.FIFOTYPE)], None),
    ]


ATTACK_IDS = [attack[0] for attack in _attacks(Path("/nonexistent"))]


@pytest.fixture
def outside(tmp_path) -> Path:
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "secret.txt").write_text("secret\n")
    return folder


@pytest.mark.parametrize("attack", ATTACK_IDS)
def test_plain_extractall_refuses_naming_the_member(attack, outside, tmp_path):
    name, members, target = next(a for a in _attacks(outside) if a[0] == attack)
    archive = _archive(tmp_path / f"{name}.tar.gz", members)
    destination = tmp_path / "extract"
    destination.mkdir()
    with tarfile.open(archive) as tar, pytest.raises(UnsafeArchiveMember, match="refusing to extract archive member") as info:
        tar.extractall(destination)  # no filter argument: the process default applies
    assert info.value.member_name in [m[0].name for m in members]
    if target is not None:
        assert not target.exists()
    assert (outside / "secret.txt").read_text() == "secret\n"


@pytest.mark.parametrize("attack", ["dotdot", "symlink-absolute", "hardlink-absolute", "char-device"])
def test_allennlp_load_archive_refuses(attack, outside, tmp_path):
    name, members, target = next(a for a in _attacks(outside) if a[0] == attack)
    archive = _archive(tmp_path / f"{name}.tar.gz", members)
    with pytest.raises(UnsafeArchiveMember):
        load_archive(str(archive))
    if target is not None:
        assert not target.exists()


def test_downward_links_and_plain_members_still_extract(tmp_path):
    archive = _archive(
        tmp_path / "fine.tar.gz",
        [_file("tokenizer/vocab.txt", b"[PAD]\n"), _link("vocab.txt", "tokenizer/vocab.txt")],
    )
    destination = tmp_path / "extract"
    destination.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(destination)
    assert (destination / "vocab.txt").read_text() == "[PAD]\n"


def test_allennlp_evaluate_exits_non_zero(outside, tmp_path):
    """The command line a user runs on a downloaded archive."""
    archive = _archive(tmp_path / "evil.tar.gz", [_file(f"../{outside.name}/owned.txt")])
    data = tmp_path / "data.txt"
    data.write_text("some text\n")
    result = subprocess.run(
        [sys.executable, "-m", "allennlp", "evaluate", str(archive), str(data), "--include-package", "bitmaps_allennlp"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "refusing to extract archive member" in result.stderr
    assert not (outside / "owned.txt").exists()

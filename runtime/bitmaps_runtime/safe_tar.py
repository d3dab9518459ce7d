"""
Safe extraction of every tar archive the process opens.

AllenNLP unpacks each `model.tar.gz` (trained models, packed exports, teachers, `pretrained`
initializers) with a bare `extractall`, which writes a member named `../x` or `/etc/x`, or one
reached through a symlink member, wherever the name points. Importing `bitmaps_allennlp` makes
`safe_extraction_filter` the process's default tar extraction filter (the `filter` hook of PEP
706), so AllenNLP's own loading is covered without patching it.

The rule: no absolute member names; Python's `data` filter (no `..` escapes, no device files or FIFOs,
no links that resolve outside the folder, no setuid bits), and on top of it no link whose target
is absolute or climbs with `..` at all. With every name and every link target relative and
downward, every path resolves inside the folder however links are chained, which does not rely
on `os.path.realpath` (Pythons before 3.11.13 have known bypasses of the `data` filter through
it). A model archive has no use for upward links, so nothing legitimate is refused.
"""
import posixpath
import tarfile


class UnsafeArchiveMember(tarfile.FilterError):
    """An archive member that would be written outside the extraction folder, or is not a plain
    file, folder or downward link. The message names the member."""

    def __init__(self, member: tarfile.TarInfo, reason: str) -> None:
        super().__init__(member)
        self.member_name = member.name
        self.reason = reason

    def __str__(self) -> str:
        return f"refusing to extract archive member {self.member_name!r}: {self.reason}"


def _climbs_or_is_absolute(path: str) -> bool:
    return posixpath.isabs(path) or path.startswith("\\") or ".." in path.replace("\\", "/").split("/")


def safe_extraction_filter(member: tarfile.TarInfo, dest_path: str) -> tarfile.TarInfo:
    """A tarfile extraction filter (`TarFile.extractall(filter=...)`)."""
    if posixpath.isabs(member.name) or member.name.startswith("\\"):
        # the `data` filter would strip the slash and extract it inside; an absolute name in a
        # model archive is a sign of a crafted file, so it is refused outright
        raise UnsafeArchiveMember(member, "its path is absolute")
    if member.issym() or member.islnk():
        kind = "symlink" if member.issym() else "hardlink"
        if _climbs_or_is_absolute(member.linkname):
            raise UnsafeArchiveMember(
                member, f"it is a {kind} to {member.linkname!r}, which is absolute or climbs out with '..'"
            )
    try:
        return tarfile.data_filter(member, dest_path)
    except tarfile.FilterError as error:
        raise UnsafeArchiveMember(member, _reason(error)) from None


def _reason(error: tarfile.FilterError) -> str:
    if isinstance(error, tarfile.AbsolutePathError):
        return "its path is absolute"
    if isinstance(error, tarfile.OutsideDestinationError):
        return "it would be written outside the extraction folder"
    if isinstance(error, tarfile.SpecialFileError):
        return "it is a device file, FIFO or other special file"
    if isinstance(error, tarfile.AbsoluteLinkError):
        return "it is a link to an absolute path"
    if isinstance(error, tarfile.LinkOutsideDestinationError):
        return "it is a link that points outside the extraction folder"
    return str(error)


def install_safe_extraction() -> None:
    """Make `safe_extraction_filter` the default of every `TarFile` in this process (and of the
    workers it spawns, which import the plugin too)."""
    tarfile.TarFile.extraction_filter = staticmethod(safe_extraction_filter)

"""Files written whole or not at all, the one rule every writer here follows: the content goes to a
temporary file beside the target, which replaces the target only once it is complete. An
interrupt or an error on the way leaves an earlier file of that name as it was, and no partial
file behind."""
import contextlib
import os
import secrets
from pathlib import Path
from typing import IO, Iterator, Optional, Union


def _create_beside(target: Path) -> "tuple[int, str]":
    """A new file next to `target`, created with mode 0o666 so that the process's umask applies
    as open() would apply it (mkstemp makes 0600, and reading the umask means setting it, which
    another thread could see)."""
    while True:
        partial = str(target.parent / f".{target.name}.{secrets.token_hex(6)}.partial")
        try:
            return os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), partial
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_file(path: Union[str, Path], mode: str = "w", encoding: Optional[str] = None) -> Iterator[IO]:
    """A handle to write `path`'s new content to (`mode` "w" or "wb"); `path` is replaced when the
    block ends without an exception."""
    fd, partial = _create_beside(Path(path))
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise

"""Files written whole or not at all, the one rule every writer here follows: the content goes to a
temporary file beside the target, which replaces the target only once it is complete. An
interrupt or an error on the way leaves an earlier file of that name as it was, and no partial
file behind."""
import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Optional, Union


@contextlib.contextmanager
def atomic_file(path: Union[str, Path], mode: str = "w", encoding: Optional[str] = None) -> Iterator[IO]:
    """A handle to write `path`'s new content to (`mode` "w" or "wb"); `path` is replaced when the
    block ends without an exception."""
    target = Path(path)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(partial, 0o666 & ~umask)  # the mode open() would give, not mkstemp's 0600
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise

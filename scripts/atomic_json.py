"""Writing a result JSON so that an interrupted script never leaves a half-written file
(`bitmaps_runtime.atomic.atomic_file`, the rule every writer here follows)."""
import json
from pathlib import Path
from typing import Any, Union

from bitmaps_runtime.atomic import atomic_file


def write_json(path: Union[str, Path], value: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w", encoding="utf-8") as out:
        json.dump(value, out, indent=2)
        out.write("\n")

"""Writing a result JSON so that an interrupted script never leaves a half-written file: a
temporary file in the same folder, readable like any committed file, then renamed over the target."""
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Union


def write_json(path: Union[str, Path], value: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        json.dump(value, tmp, indent=2)
        tmp.write("\n")
    os.chmod(tmp.name, 0o644)  # NamedTemporaryFile creates 0600
    os.replace(tmp.name, path)

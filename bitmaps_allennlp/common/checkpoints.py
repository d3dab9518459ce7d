"""
The one rule for a config's checkpoint names: a local path or a Hugging Face hub name. A missing
local folder passed to transformers is taken for a hub name, and offline the answer is only
"Incorrect path_or_model_id"; a name that is clearly a path is checked here first instead, and the
error names the config field.
"""
import os

from allennlp.common.checks import ConfigurationError


def names_a_local_path(name: str) -> bool:
    """A path rather than a hub name (`bert-base-uncased`, `org/model`): an archive or weights
    file, more than one folder deep, or explicitly relative, absolute or home-relative."""
    return (
        name.endswith((".tar.gz", ".th", ".bin", ".safetensors"))
        or name.count("/") > 1
        or name.startswith(("/", ".", "~"))
    )


def check_checkpoint(name: str, field: str) -> None:
    """ConfigurationError naming `field` when `name` is a local path that does not exist."""
    if names_a_local_path(name) and not os.path.exists(os.path.expanduser(name)):
        hint = " (the shared data beside this checkout: README)" if "shared/data" in name else ""
        raise ConfigurationError(f"{field}: {name} does not exist{hint}")

"""`bitmaps_start_from`: AllenNLP's `pretrained` initializer, naming a missing weights file."""
import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.nn import InitializerApplicator

import bitmaps_allennlp  # noqa: F401 (registers the initializer)


def _applicator(path: str) -> InitializerApplicator:
    return InitializerApplicator.from_params(
        Params({"regexes": [[".*", {"type": "bitmaps_start_from", "weights_file_path": path}]]})
    )


def test_it_loads_the_weights_as_pretrained_does(tmp_path):
    source, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    torch.save(source.state_dict(), tmp_path / "best.th")
    _applicator(str(tmp_path / "best.th"))(target)
    assert torch.equal(target.weight, source.weight) and torch.equal(target.bias, source.bias)


def test_a_missing_file_is_named_with_the_run_that_makes_it(tmp_path):
    missing = str(tmp_path / "runs" / "bit_stage1" / "model.tar.gz")
    with pytest.raises(ConfigurationError, match=f"model.initializer: {missing} does not exist. .*Train that run first"):
        _applicator(missing)

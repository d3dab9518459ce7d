"""
`bitmaps_start_from`: AllenNLP's `pretrained` initializer, with a missing weights file named as
what it is. Every distillation recipe starts from an earlier run's weights (its `init_from`: the
teacher's `runs/teacher/best.th`, or BiT stage 1's archive for stage 2), and a recipe run before
that one only met `FileNotFoundError` from `torch.load`, inside AllenNLP's config parsing.
"""
import os
from typing import Dict, Optional

from allennlp.common.checks import ConfigurationError
from allennlp.nn.initializers import Initializer, PretrainedModelInitializer


@Initializer.register("bitmaps_start_from")
class StartFrom(PretrainedModelInitializer):
    """
    The parameters of an earlier run: a weights file (`best.th`) or a model archive, loaded as
    AllenNLP's `pretrained` initializer loads them (`weights_only` `torch.load`, safe extraction).

    # Parameters

    weights_file_path : `str`
        The earlier run's `best.th` or `model.tar.gz`.
    parameter_name_overrides : `Dict[str, str]`, optional (default = `None`)
        As `pretrained`'s: this model's parameter name -> the name in the file.
    """

    def __init__(self, weights_file_path: str, parameter_name_overrides: Optional[Dict[str, str]] = None) -> None:
        if not os.path.isfile(weights_file_path):
            raise ConfigurationError(
                f"model.initializer: {weights_file_path} does not exist. A recipe starts from an earlier "
                "run's weights (its init_from): the teacher's (training_configs/teacher_minilm_mlm.jsonnet "
                "-s runs/teacher), or BiT stage 1's archive for stage 2 (bit_stage1_w1a8.jsonnet -s "
                "runs/bit_stage1). Train that run first, or point init_from at its file."
            )
        super().__init__(weights_file_path, parameter_name_overrides)

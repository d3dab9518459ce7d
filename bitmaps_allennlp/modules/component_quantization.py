from dataclasses import dataclass, fields, replace
from typing import Any, Dict

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.modules.activation_quantizer import ONE_BIT_ACTIVATIONS, check_activation_mode
from bitmaps_allennlp.modules.sign_ste import check_estimator
from bitmaps_allennlp.modules.weight_quantizer import check_weight_mode
from bitmaps_allennlp.modules.weight_scale import check_weight_scale


@dataclass(frozen=True)
class ComponentQuantization:
    """
    How one binarized component is quantized; the knobs of `bitmaps_binary_bert`.

    # Parameters

    weights : `str`, optional (default = `"binary"`)
        `"binary"` (1 bit) or `"ternary"` (BitNet b1.58 absmean, 1.58 bits); embedding tables also
        `"int8"` (absmax per row, stored exactly by the packed `int8` table format).
    weight_scale : `str`, optional (default = `"mean_abs"`)
        `"mean_abs"` per output channel, `"per_tensor"`, or `"learned"`.
    center_weights : `bool`, optional (default = `False`)
        Subtract each row's mean before the sign.
    estimator : `str`, optional (default = `"clipped"`)
        The sign's straight-through estimator: `"clipped"`, `"tanh"` or `"approx_sign"`.
    activations : `str`, optional (default = `"real"`)
        The inputs' quantizer: `"real"`, `"int8"`, `"sign"`, `"elastic"` or `"two_set"`.
    """

    weights: str = "binary"
    weight_scale: str = "mean_abs"
    center_weights: bool = False
    estimator: str = "clipped"
    activations: str = "real"

    def check(self, key: str) -> "ComponentQuantization":
        """Fails with a `ConfigurationError` naming `key` (the config path of these knobs, empty
        for the top-level ones)."""
        key = f"{key}." if key else ""
        check_weight_mode(self.weights, f"{key}weights")
        check_weight_scale(self.weight_scale, f"{key}weight_scale")
        check_estimator(self.estimator, f"{key}estimator")
        check_activation_mode(self.activations, f"{key}activations")
        if self.weights != "binary" and self.center_weights:
            raise ConfigurationError(f"{key}center_weights: centering applies to binary weights, not {self.weights}")
        if self.weights == "int8" and self.weight_scale != "mean_abs":
            raise ConfigurationError(
                f"{key}weight_scale: int8 weights take one absmax step per row; {self.weight_scale!r} does not apply"
            )
        if self.weights == "ternary":
            if self.activations in ONE_BIT_ACTIVATIONS:
                raise ConfigurationError(
                    f"{key}activations: ternary weights take 'real' or 'int8' activations "
                    f"(BitNet b1.58), got {self.activations!r}"
                )
        return self

    def updated(self, overrides: Dict[str, Any], key: str) -> "ComponentQuantization":
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigurationError(f"{key or 'bitmaps_binary_bert'}: unknown knob(s) {unknown}; expected some of {sorted(known)}")
        return replace(self, **overrides).check(key)

"""
A packed model file's masked LM on the C++ core: `PackedEncoder(packed).hidden_states(ids, mask)`
and `.logits(hidden_rows)`, numpy in and out. The C++ model points into the file's arrays (kept
alive here); fp16 vectors are widened to fp32 once, tables stay in their stored format.
"""
import os
from typing import Dict, Optional

import numpy as np

from bitmaps_runtime.file_format import PackedFormatError, PackedModelFile
from bitmaps_runtime.formats import ACTIVATION_MODES, BERT_LAYER_LINEARS, DENSE_NATIVE_ID, PLAIN_TABLE_IDS, SCHEME_SPECS, TABLE_SPECS
from bitmaps_runtime.native import SettingError, native_module

# `hidden_act` values the C++ core computes (csrc/encoder.h `Activation`), as transformers
# defines them: erf GELU, the tanh approximation, ReLU
ACTIVATIONS = {"gelu": 0, "gelu_python": 0, "gelu_new": 1, "gelu_pytorch_tanh": 1, "relu": 2}
# smallest |alpha| an elastic quantizer uses (ElasticBinarizer.effective_alpha)
ALPHA_FLOOR = 1e-5


class RuntimeUnavailable(RuntimeError):
    """The C++ core cannot run this model here (not built, or a model feature it does not have)."""


def runtime_problem(packed: PackedModelFile) -> Optional[str]:
    """Why the C++ core cannot run `packed`, or None if it can."""
    if native_module() is None:
        return "the native extension is not built (or BITMAPS_KERNELS=reference)"
    if packed.config.get("hidden_act") not in ACTIVATIONS:
        return f"hidden_act {packed.config.get('hidden_act')!r} is not one of {sorted(ACTIVATIONS)}"
    return None


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def _effective_alpha(value: np.ndarray) -> float:
    return max(abs(float(np.asarray(value, dtype=np.float32).reshape(()))), ALPHA_FLOOR)


class PackedEncoder:
    """
    The packed masked LM of `packed` on the C++ core.

    # Parameters

    packed : `PackedModelFile`
        A file read by `file_format.read_packed_model` (validated there).
    source : `str`
        Named in error messages.
    """

    def __init__(self, packed: PackedModelFile, source: str = "packed model") -> None:
        problem = runtime_problem(packed)
        if problem is not None:
            raise RuntimeUnavailable(f"{source}: {problem}")
        self._native = native_module()
        # every step that builds the C++ model, as (function, arguments without the model): what
        # runtime/tests/make_golden.py writes for the C++ tests to replay
        self.steps = []
        config = packed.config
        self.hidden_size = config["hidden_size"]
        self.vocab_size = config["vocab_size"]
        self.max_positions = config["max_position_embeddings"]
        self.num_layers = config["num_hidden_layers"]
        attention = packed.attention
        self._model = self._build(
            "model_new",
            config["hidden_size"],
            config["num_attention_heads"],
            config["intermediate_size"],
            config["vocab_size"],
            config["max_position_embeddings"],
            config["type_vocab_size"],
            float(config["layer_norm_eps"]),
            ACTIVATIONS[config["hidden_act"]],
            attention["attention"] == "bi_attention",
            config["num_hidden_layers"],
        )
        tensors: Dict[str, np.ndarray] = dict(packed.tensors)
        used = set()

        def take(name: str) -> np.ndarray:
            if name not in tensors:
                raise PackedFormatError(f"{source}: tensor {name!r} is missing")
            used.add(name)
            return tensors[name]

        def vector(name: str) -> np.ndarray:
            return _f32(take(name))

        for table, short in (("embeddings.word_embeddings", "word"), ("embeddings.position_embeddings", "position")):
            entry = packed.tables.get(table)
            if entry is not None:
                spec = TABLE_SPECS[entry["format"]]
                stored = {s.role: take(f"{table}.{s.role}") for s in spec.tensors}
                data = stored.get("q", stored.get("packed_weight"))
                scale = stored.get("step", stored.get("scale"))
                column = (_f32(stored["column"]),) if "column" in stored else ()
                self._build(
                    "model_table",
                    short,
                    spec.native_id,
                    entry["rows"],
                    entry["dim"],
                    np.ascontiguousarray(data),
                    _f32(scale).reshape(-1),
                    *column,
                )
            else:
                weight = take(f"{table}.weight")
                fp16 = weight.dtype == np.float16
                data = np.ascontiguousarray(weight) if fp16 else _f32(weight)
                self._build(
                    "model_table", short, PLAIN_TABLE_IDS["F16" if fp16 else "F32"], weight.shape[0], weight.shape[1], data, None
                )
        self._build("model_vector", "token_type", -1, vector("embeddings.token_type_embeddings.weight"))
        self._norm("embeddings", -1, vector("embeddings.LayerNorm.weight"), vector("embeddings.LayerNorm.bias"))
        modes = {"activations": ACTIVATION_MODES.index(attention["activations"]), "probs": ACTIVATION_MODES.index(attention["probs"])}
        for layer in range(self.num_layers):
            prefix = f"encoder.layer.{layer}."
            for slot, module in BERT_LAYER_LINEARS.items():
                self._linear(packed, prefix + module, layer, slot, take)
            self._norm("attention", layer, vector(prefix + "attention.output.LayerNorm.weight"), vector(prefix + "attention.output.LayerNorm.bias"))
            self._norm("output", layer, vector(prefix + "output.LayerNorm.weight"), vector(prefix + "output.LayerNorm.bias"))
            quantizers = []
            for role, mode in (("query", "activations"), ("key", "activations"), ("value", "activations"), ("probs", "probs")):
                code = modes[mode]
                alpha, beta = 1.0, 0.0
                if ACTIVATION_MODES[code] in ("elastic", "two_set"):
                    base = f"{prefix}attention.self.{role}_quantizer."
                    alpha, beta = _effective_alpha(take(base + "alpha")), float(take(base + "beta").reshape(()))
                quantizers += [code, alpha, beta]
            self._build("model_quantizers", layer, *quantizers)
        self.has_head = "head.bias" in tensors
        if self.has_head:
            self._linear(packed, "head.dense", -1, "dense", take)
            self._norm("head", -1, vector("head.layer_norm.weight"), vector("head.layer_norm.bias"))
            self._build("model_vector", "decoder_bias", -1, vector("head.bias"))
        unused = sorted(set(tensors) - used)
        if unused:
            raise PackedFormatError(f"{source}: tensors the encoder does not use: {unused[:5]}")
        self._build("model_prepare")
        if os.environ.get("BITMAPS_PROFILE", "") not in ("", "0"):
            self.profile(True)

    def _build(self, function: str, *args):
        """Calls the native model-building `function` and records the step."""
        self.steps.append((function, args))
        if function == "model_new":
            return self._native.model_new(*args)
        return getattr(self._native, function)(self._model, *args)

    def _norm(self, part: str, layer: int, weight: np.ndarray, bias: np.ndarray) -> None:
        self._build("model_vector", f"{part}.weight", layer, weight)
        self._build("model_vector", f"{part}.bias", layer, bias)

    def _linear(self, packed: PackedModelFile, name: str, layer: int, slot: str, take) -> None:
        entry = packed.linears.get(name)
        bias_name = f"{name}.bias"
        if entry is None:  # left in floating point by the export
            weight = _f32(take(f"{name}.weight"))
            bias = _f32(take(bias_name)) if bias_name in packed.tensors else None
            self._build(
                "model_linear", layer, slot, DENSE_NATIVE_ID, weight.shape[1], weight.shape[0], weight, None, bias, 1.0, 0.0
            )
            return
        spec = SCHEME_SPECS[entry["scheme"]]
        stored = {s.role: take(f"{name}.{s.role}") for s in spec.tensors}
        bias = _f32(take(bias_name)) if bias_name in packed.tensors else None
        alpha = float(stored["input_alpha"].reshape(())) if "input_alpha" in stored else 1.0
        beta = float(stored["input_beta"].reshape(())) if "input_beta" in stored else 0.0
        self._build(
            "model_linear",
            layer,
            slot,
            spec.native_id,
            entry["in_features"],
            entry["out_features"],
            np.ascontiguousarray(stored["packed_weight"]),
            _f32(stored["scale"]),
            bias,
            alpha,
            beta,
        )

    def hidden_states(
        self,
        token_ids: np.ndarray,
        mask: Optional[np.ndarray] = None,
        type_ids: Optional[np.ndarray] = None,
        threads: Optional[int] = None,
        skip_padding: bool = False,
        rows_per_pass: Optional[int] = None,
    ) -> np.ndarray:
        """`(batch, seq)` token ids (and mask: nonzero = real token; type ids) -> `(batch, seq,
        hidden)` float32, the encoder's last hidden states. Padded positions are computed as the
        torch model computes them, unless `skip_padding`: then, where each mask row is real tokens
        followed by padding, the layers run on the real tokens alone (each sequence's attention over
        its own length), which saves the padding's share of the work, and the padded positions'
        states are 0. The real tokens' states agree with the padded run to float rounding (the
        softmax sums fewer terms). Sequences go through the layers in passes of at most
        `rows_per_pass` rows (default: the core's `kRowsPerPass`; a longer sequence makes a pass
        alone), so that a pass's activations stay in the core's cache; on several threads, a batch
        of enough passes runs them side by side, a thread each. Neither changes a result beyond
        float rounding in linears with float inputs (W1A32), whose kernel depends on the rows."""
        if rows_per_pass is not None and (isinstance(rows_per_pass, bool) or not isinstance(rows_per_pass, int) or rows_per_pass < 1):
            raise ValueError(f"rows_per_pass must be a positive int (or None for the default), got {rows_per_pass!r}")
        ids = np.ascontiguousarray(token_ids, dtype=np.int64)
        if ids.ndim != 2:
            raise ValueError(f"token_ids must be (batch, seq), got shape {ids.shape}")
        mask = np.ones(ids.shape, np.int32) if mask is None else np.ascontiguousarray(mask, dtype=np.int32)
        types = None if type_ids is None else np.ascontiguousarray(type_ids, dtype=np.int64)
        out = np.empty(ids.shape + (self.hidden_size,), dtype=np.float32)
        self._native.model_forward(
            self._model, ids, mask, types, out, threads or default_threads(), skip_padding, rows_per_pass or 0
        )
        return out

    def profile(self, enable: bool = True) -> Dict[str, float]:
        """Seconds per phase (embeddings, each linear scheme, attention, GELU, LayerNorm, head)
        accumulated since the last call, and timing on (`enable`) or off from now on. Also on
        from the start with `BITMAPS_PROFILE=1`. Where a batch's passes ran side by side on
        several threads (`hidden_states`), a phase's seconds add up over the threads."""
        return self._native.model_profile(self._model, enable)

    def logits(self, hidden: np.ndarray, threads: Optional[int] = None) -> np.ndarray:
        """`(rows, hidden)` hidden states -> `(rows, vocab)` masked-LM logits."""
        rows = _f32(hidden).reshape(-1, self.hidden_size)
        out = np.empty((rows.shape[0], self.vocab_size), dtype=np.float32)
        self._native.model_logits(self._model, rows, out, threads or default_threads())
        return out


def default_threads() -> int:
    """`BITMAPS_THREADS` (a whole number >= 1; `SettingError` otherwise), else the CPUs this
    process may run on."""
    value = os.environ.get("BITMAPS_THREADS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise SettingError(f"BITMAPS_THREADS={value!r}: expected a whole number of threads >= 1")
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)

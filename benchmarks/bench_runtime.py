#!/usr/bin/env python
"""
The packed runtime against what a user would pick instead, measured in ONE process with
interleaved rounds: Bitmaps' C++ encoder (`bitmaps_runtime`) on packed W1A1, W1A8, W1A32 and
ternary W1.58A8 files; ONNX Runtime fp32 and int8 (`quantize_dynamic`, per-tensor and
per-channel, each also after ONNX Runtime's BERT graph fusions: the fastest of the four is the
peer's figure); CTranslate2 int8 (its Transformers converter, `quantization="int8"`); torch fp32 and
torch int8 dynamic quantization. Encoders only (last hidden states),
BERT-base (12 x 768, FFN 3072) and MiniLM-L6 (6 x 384, FFN 1536) shapes with random weights (speed
does not depend on their values), batch 1 and 8 x sequence 128, 1 and 2 threads.

Each configuration times every variant once per round, the variants' order rotating between
rounds, after one warm-up call each; it reports the median and the spread (min, max) per variant.
The 1-thread rounds keep every thread of the process on one CPU (`timing.one_cpu`: CTranslate2
runs its forward on a worker thread, which could otherwise run on a vCPU of another speed).
Thread pools that spin after a call (ONNX Runtime's by default, torch's and CTranslate2's OpenMP
workers) would take the other cores from whichever variant runs next, so spinning is turned off for
all of them (`session.intra_op.allow_spinning = 0`, `OMP_WAIT_POLICY=PASSIVE`); Bitmaps' pool spins at most 100 us
after a job (`BITMAPS_SPIN_US`), a bounded cost to whatever runs next.
Peak RSS is measured separately, one fresh process per variant (load + one batch-1 forward),
with the file sizes. Writes JSON and a PNG, prints a Markdown table.

`--paths avx512_vnni avx2` runs each packed variant once per kernel path in the same rounds
(`bitmaps_w1a1@avx2`, ...; one loaded model per path, the path selected before each call), so that
an AVX-512 CPU gives its AVX2 figures against the same peers' samples. Those peers keep their
AVX-512 kernels (ONNX Runtime's and CTranslate2's int8 GEMMs use VNNI), which an AVX2-only CPU does
not have. `--peers-isa avx2` runs the whole process as on an AVX2-only CPU: where Linux can fault
on CPUID (`cpuid_fault`), the process restarts with benchmarks/cpuid_mask.c preloaded, so every
library, ONNX Runtime's MLAS and torch's fbgemm included, and Bitmaps' own dispatch see a CPUID
without AVX-512 or VNNI and pick their AVX2 kernels; the libraries' own switches are set too
(`timing.PEER_ISA_SWITCHES`). The run records what CPUID reports and the oneDNN ISA that
CTranslate2 reports. Without CPUID faulting only the switches act, and ONNX Runtime and torch int8
keep their VNNI kernels (`timing.PEERS_NOT_LIMITED`, recorded).

    python benchmarks/bench_runtime.py --out benchmarks/results          # measure (minutes)
    python benchmarks/bench_runtime.py --paths avx512_vbmi avx2 --name runtime_zen4   # both paths, one run (README's table)
    python benchmarks/bench_runtime.py --peers-isa avx2 --name runtime_zen4_avx2_cpuid   # as on an AVX2-only CPU
    python benchmarks/bench_runtime.py --render benchmarks/results/runtime.json  # table + plot again
"""
import argparse
import json
import logging
import os

# before torch (and its OpenMP runtime) is imported anywhere in this process or its children
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import PEER_ISA_SWITCHES, cpu_name, limit_peer_isa, one_cpu  # noqa: E402

SHAPES = {
    "minilm": dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "bert-base": dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}
LINEARS = ["query", "key", "value", "attention_output", "ffn_in", "ffn_out"]
# packed variant -> the training knobs its file is exported from
PACKED = {
    "bitmaps_w1a1": dict(activations="sign", center_weights=True),
    "bitmaps_w1a8": dict(activations="int8"),
    "bitmaps_w1a32": dict(),
    "bitmaps_w158a8": dict(weights="ternary", weight_scale="per_tensor", activations="int8"),
}
# ONNX Runtime int8 as a user would build it: `quantize_dynamic` of the exported graph, per tensor or
# per channel, or of the graph after ONNX Runtime's BERT fusions (`onnxruntime.transformers.optimizer`:
# Attention, quantized to QAttention with int8 Q/K/V products, SkipLayerNormalization, BiasGelu,
# EmbedLayerNormalization), which ONNX Runtime's BERT quantization examples apply first. The peer's
# figure is the fastest of those it ran in a configuration (`fastest_ort_int8`).
ORT_INT8 = ["ort_int8_channel", "ort_int8_tensor", "ort_int8_fused_channel", "ort_int8_fused_tensor"]
PEERS = ORT_INT8 + ["ort_fp32", "ct2_int8", "torch_fp32", "torch_int8"]


def fastest_ort_int8(config: Dict[str, float]) -> str:
    """The ONNX Runtime int8 build that is the peer, from a configuration's medians: the fastest
    of the `ORT_INT8` variants it has (runs before the fused ones had only the first two)."""
    return min((v for v in ORT_INT8 if v in config), key=config.get)


def cpu_flags() -> List[str]:
    wanted = {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_vpopcntdq", "avx512_bitalg", "avx512vbmi", "asimd", "asimddp"}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return sorted(wanted & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return []


def _bert(shape: str):
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    return BertModel(BertConfig(**SHAPES[shape]), add_pooling_layer=False).eval()


def export_encoder_onnx(bert, path: Path) -> None:
    """`bert` (a `transformers` BertModel) as ONNX: (input_ids, attention_mask) -> last hidden states,
    batch and sequence dynamic."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.ones(1, 8, dtype=torch.long)
    torch.onnx.export(
        Encoder(bert).eval(), (ids, torch.ones_like(ids)), str(path), input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"], opset_version=17, dynamo=False,
        dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
    )


def ort_session(path: Path, threads: int, spinning: bool = False):
    """An ONNX Runtime CPU session on `threads` threads. Its pool does not spin after a call unless
    `spinning` (ONNX Runtime's default): in interleaved rounds a spinning pool would take the cores
    from whatever runs next (peer_spinning.py times the default in blocks of its own)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def write_ct2_model(bert, directory: Path) -> int:
    """CTranslate2's int8 model of encoder `bert` in `directory` (model.bin, config.json,
    vocabulary.json), written by its Transformers converter; returns the folder's bytes. The
    converter reads a model from a folder or the hub and builds a tokenizer for its vocabulary;
    here it takes the model in memory (CTranslate2's BERT spec has a pooler, which the encoder's
    output does not use, so it gets an untrained one) and a vocabulary of [UNK] alone (the
    converter pads it to the model's vocab size): the benchmark feeds token ids."""
    from ctranslate2.converters import TransformersConverter
    from transformers import BertModel

    class Vocabulary:
        unk_token = "[UNK]"

        def get_vocab(self):
            return {"[UNK]": 0}

    class InMemory(TransformersConverter):
        def load_model(self, model_class, model_name_or_path, **kwargs):
            pooled = BertModel(bert.config, add_pooling_layer=True).eval()
            missing, unexpected = pooled.load_state_dict(bert.state_dict(), strict=False)
            if unexpected or not all(key.startswith("pooler.") for key in missing):
                raise ValueError(f"CTranslate2 conversion: state dict mismatch (missing {missing}, unexpected {unexpected})")
            return pooled

        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
            return Vocabulary()

    with tempfile.TemporaryDirectory() as config_dir:
        bert.config.save_pretrained(config_dir)  # the converter reads the configuration from a folder
        InMemory(config_dir).convert(str(directory), quantization="int8", force=True)
    return sum(f.stat().st_size for f in directory.iterdir())


def ct2_onednn_isa() -> str:
    """The instruction set oneDNN reports in a fresh process with this environment, after a
    CTranslate2 int8 forward (its GEMM backend on AMD CPUs; on Intel ones it uses MKL and oneDNN
    may report nothing): the check that the peers' ISA switches took effect."""
    code = (  # a small encoder: the ISA oneDNN picks does not depend on the model
        "import sys, tempfile; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import bench_runtime as b\n"
        "import numpy as np; from transformers import BertConfig, BertModel\n"
        "bert = BertModel(BertConfig(vocab_size=64, hidden_size=64, num_hidden_layers=1, num_attention_heads=2,\n"
        "                            intermediate_size=128), add_pooling_layer=False).eval()\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        "    b.write_peer_files(bert, Path(d), peers=['ct2_int8'])\n"
        "    b.load('ct2_int8', '', Path(d), 1)(np.ones((1, 8), np.int64), np.ones((1, 8), np.int64))\n"
    )
    env = dict(os.environ, ONEDNN_VERBOSE="1")
    result = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parent)], env=env,
                            capture_output=True, text=True, check=True)
    for line in (result.stdout + result.stderr).splitlines():
        if line.startswith("onednn_verbose,info,cpu,isa:"):
            return line.split("isa:", 1)[1].strip()
    return "not reported (oneDNN not used)"


def peers_isa_record(isa: str, limit: Dict[str, object]) -> Dict[str, object]:
    """What a run with the peers limited to `isa` records beside its figures: timing.limit_peer_isa's
    record (the switches, whether CPUID is masked and what it reports, the peers left unlimited) and
    what torch and CTranslate2's oneDNN report."""
    import torch

    return {"limit": isa, **limit, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "ctranslate2_onednn_isa": ct2_onednn_isa()}


def use_kernel_path(path: str) -> None:
    """Runs the packed variants of this process, and of the processes it starts, on `path`."""
    from bitmaps_runtime import native

    os.environ[native.ENV_VARIABLE] = path
    native.select(path)


def fuse_bert_onnx(bert, source: Path, out: Path) -> Path:
    """`source` (the exported encoder of `bert`) after ONNX Runtime's BERT graph fusions, as its
    documentation applies them before quantizing (`optimize_model`, its default level). Refuses a
    graph in which the attention did not fuse: that peer would be the unfused one under a new name."""
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(source), model_type="bert", num_heads=bert.config.num_attention_heads,
                           hidden_size=bert.config.hidden_size)
    fused = model.get_fused_operator_statistics()
    if fused.get("Attention", 0) != bert.config.num_hidden_layers:
        raise RuntimeError(f"ONNX Runtime's BERT optimizer fused {fused.get('Attention', 0)} attention layers of "
                           f"{bert.config.num_hidden_layers} ({fused})")
    model.save_model_to_file(str(out))
    return out


def write_peer_files(bert, directory: Path, peers: List[str] = PEERS) -> Dict[str, int]:
    """Writes the peers' files of encoder `bert` (ONNX fp32 and int8, CTranslate2 int8, torch fp32
    and int8 state dicts) into `directory`; returns their sizes in bytes."""
    import torch

    sizes = {}
    if any(peer.startswith("ort") for peer in peers):  # the int8 files are quantized from the fp32 one
        from onnxruntime.quantization import QuantType, quantize_dynamic

        onnx_path = directory / "ort_fp32.onnx"
        export_encoder_onnx(bert, onnx_path)
        sizes["ort_fp32"] = onnx_path.stat().st_size
        fused = None
        # quantize_dynamic advises its shape-inference pre-processing (for image models) on the root
        # logger at every call; the exported encoder's shapes are inferred without it
        def hint(record):
            return "pre-processing before quantization" not in record.getMessage()

        logging.getLogger().addFilter(hint)
        try:
            for name in (peer for peer in ORT_INT8 if peer in peers):
                source, options = onnx_path, {}
                if "_fused_" in name:
                    fused = fused or fuse_bert_onnx(bert, onnx_path, directory / "ort_fp32_fused.onnx")
                    # the fused operators' outputs have no inferred type: the quantizer must be told they are float
                    source, options = fused, {"DefaultTensorType": 1}  # onnx.TensorProto.FLOAT
                quantize_dynamic(str(source), str(directory / f"{name}.onnx"), weight_type=QuantType.QInt8,
                                 per_channel=name.endswith("_channel"), extra_options=options)
                sizes[name] = (directory / f"{name}.onnx").stat().st_size
        finally:
            logging.getLogger().removeFilter(hint)
    if "ct2_int8" in peers:
        sizes["ct2_int8"] = write_ct2_model(bert, directory / "ct2_int8")
    if "torch_fp32" in peers:
        torch.save(bert.state_dict(), directory / "torch_fp32.pt")
        sizes["torch_fp32"] = (directory / "torch_fp32.pt").stat().st_size
    if "torch_int8" in peers:
        quantized = torch.ao.quantization.quantize_dynamic(bert, {torch.nn.Linear}, dtype=torch.qint8)
        torch.save(quantized.state_dict(), directory / "torch_int8.pt")
        sizes["torch_int8"] = (directory / "torch_int8.pt").stat().st_size
    return sizes


def interleaved_ms(runners: Dict[str, Callable], inputs: Dict[str, tuple], rounds: int) -> Dict[str, List[float]]:
    """Milliseconds of each runner on its inputs, one call each per round after a warm-up call,
    the order rotating between rounds."""
    variants = list(runners)
    for v in variants:
        runners[v](*inputs[v])
    samples: Dict[str, List[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants[r % len(variants):] + variants[: r % len(variants)]:
            start = time.perf_counter()
            runners[v](*inputs[v])
            samples[v].append((time.perf_counter() - start) * 1e3)
    return samples


def prepare(shape: str, directory: Path) -> Dict[str, int]:
    """Writes every variant's file for `shape` into `directory`; returns their sizes."""
    from bitmaps_allennlp.modules.bert_binarization import binarize_bert_encoder
    from bitmaps_allennlp.modules.binarization_spec import BinarizationSpec
    from bitmaps_allennlp.modules.component_quantization import ComponentQuantization
    from bitmaps_allennlp.packed.export import pack_bert
    from bitmaps_allennlp.packed.file_format import write_packed_model

    sizes = write_peer_files(_bert(shape), directory)
    for name, knobs in PACKED.items():
        model = _bert(shape)
        binarize_bert_encoder(model, BinarizationSpec.from_options(LINEARS, ComponentQuantization(**knobs)))
        sizes[name] = write_packed_model(pack_bert(model)[0], directory / f"{name}.safetensors")
    return sizes


def packed_model(path: str):
    """The packed model of a packed archive (`bitmaps-export`) or of a packed model file
    (`.safetensors`, as `prepare` and profile_runtime.py --write write them)."""
    from bitmaps_runtime.archive import load_packed_archive
    from bitmaps_runtime.file_format import read_packed_model

    return read_packed_model(path) if str(path).endswith(".safetensors") else load_packed_archive(path).packed


def packed_variants(paths: List[str]) -> List[str]:
    """The packed variants, each on every kernel path of `paths` (named scheme@path when there are
    several)."""
    if len(paths) == 1:
        return list(PACKED)
    return [f"{name}@{path}" for name in PACKED for path in paths]


def load(variant: str, shape: str, directory: Path, threads: int):
    """A callable running `variant`'s encoder on (ids, mask) numpy arrays."""
    if variant.startswith("bitmaps"):
        from bitmaps_runtime import native
        from bitmaps_runtime.encoder import PackedEncoder
        from bitmaps_runtime.file_format import read_packed_model

        name, _, path = variant.partition("@")
        encoder = PackedEncoder(read_packed_model(directory / f"{name}.safetensors"))
        if not path:
            return lambda ids, mask: encoder.hidden_states(ids, mask, threads=threads)

        def run_on_path(ids, mask):
            native.select(path)  # one atomic store; the model stays prepared for its own path
            return encoder.hidden_states(ids, mask, threads=threads)

        return run_on_path
    if variant.startswith("ort"):
        session = ort_session(directory / f"{variant}.onnx", threads)
        return lambda ids, mask: session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    if variant == "ct2_int8":
        import ctranslate2
        import numpy as np

        # int8 weights, the activations quantized at each call (as ONNX Runtime's dynamic quantization)
        encoder = ctranslate2.Encoder(str(directory / "ct2_int8"), device="cpu", compute_type="int8",
                                      intra_threads=threads, inter_threads=1)

        def run_ct2(ids, mask):
            # token ids as a dense int32 array with each row's length (no padding in these inputs)
            lengths = ctranslate2.StorageView.from_array(mask.sum(axis=1, dtype=np.int32))
            output = encoder.forward_batch(ctranslate2.StorageView.from_array(ids.astype(np.int32)), lengths)
            return np.asarray(output.last_hidden_state)

        return run_ct2
    import torch

    bert = _bert(shape)
    if variant == "torch_int8":
        bert = torch.ao.quantization.quantize_dynamic(bert, {torch.nn.Linear}, dtype=torch.qint8)

    def run(ids, mask):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return bert(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state

    return run


def peak_rss_mb(variant: str, shape: str, directory: Path) -> float:
    """Peak RSS (VmHWM: ru_maxrss would count the forked parent's pages) of a fresh process that
    imports only what `variant` needs, loads it and runs one batch-1 forward."""
    code = (
        "import sys, numpy as np; sys.path.insert(0, {bench!r}); import bench_runtime as b; from pathlib import Path; "
        "run = b.load({variant!r}, {shape!r}, Path({directory!r}), 1); ids = np.full((1, 128), 1000, np.int64); "
        "run(ids, np.ones((1, 128), np.int64 if {variant!r}.startswith(('ort', 'torch')) else np.int32)); "
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024)"
    ).format(bench=str(Path(__file__).resolve().parent), variant=variant, shape=shape, directory=str(directory))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def measure(shape: str, batches: List[int], thread_counts: List[int], rounds: int, seq: int, paths: List[str]) -> Dict:
    import numpy as np

    variants = packed_variants(paths) + PEERS
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print(f"[{shape}] writing the models", flush=True)
        sizes = prepare(shape, directory)
        sizes.update({v: sizes[v.partition("@")[0]] for v in variants})
        rss = {v: peak_rss_mb(v, shape, directory) for v in variants}
        records = []
        for threads in thread_counts:
            runners = {v: load(v, shape, directory, threads) for v in variants}
            for batch in batches:
                rng = np.random.default_rng(0)
                ids = rng.integers(1000, 30000, size=(batch, seq), dtype=np.int64)
                masks = {v: np.ones((batch, seq), np.int32 if v.startswith("bitmaps") else np.int64) for v in variants}
                with one_cpu(threads == 1):  # every variant's threads on one vCPU (timing.one_cpu says why)
                    samples = interleaved_ms(runners, {v: (ids, masks[v]) for v in variants}, rounds)
                for v in variants:
                    records.append(
                        {
                            "shape": shape, "batch": batch, "seq": seq, "threads": threads, "variant": v,
                            "median_ms": statistics.median(samples[v]), "min_ms": min(samples[v]),
                            "max_ms": max(samples[v]), "rounds": rounds,
                        }
                    )
                line = ", ".join(f"{v} {statistics.median(samples[v]):.1f}" for v in variants)
                print(f"[{shape}] batch {batch}, {threads} thread(s): {line} (ms)", flush=True)
    return {"records": records, "file_bytes": sizes, "peak_rss_mb": rss}


def ratios(records: List[Dict]) -> None:
    """Adds each record's speed against ORT int8 (`fastest_ort_int8`), ORT fp32,
    CTranslate2 int8 (in runs that had it) and torch fp32 of the same configuration."""
    def key(r):
        return (r["shape"], r["batch"], r["threads"])

    by_config: Dict = {}
    for r in records:
        by_config.setdefault(key(r), {})[r["variant"]] = r["median_ms"]
    for r in records:
        config = by_config[key(r)]
        r["vs_ort_int8"] = config[fastest_ort_int8(config)] / r["median_ms"]
        r["vs_ort_fp32"] = config["ort_fp32"] / r["median_ms"]
        if "ct2_int8" in config:
            r["vs_ct2_int8"] = config["ct2_int8"] / r["median_ms"]
        r["vs_torch_fp32"] = config["torch_fp32"] / r["median_ms"]


def render(result: Dict, out: Path, stem: str = "runtime") -> str:
    """The Markdown tables of a result, and its plot as out/STEM.png."""
    records = result["records"]
    ratios(records)
    variants = list(dict.fromkeys(r["variant"] for r in records))
    lines = [
        f"CPU: {result['machine']['cpu']} ({', '.join(result['machine']['flags'])}), kernel path {result['machine']['kernel_path']}",
        "",
        "| shape | batch x seq | threads | " + " | ".join(variants) + " |",
        "|---|---|---|" + "---|" * len(variants),
    ]
    configs = list(dict.fromkeys((r["shape"], r["batch"], r["seq"], r["threads"]) for r in records))
    for shape, batch, seq, threads in configs:
        cells = []
        for v in variants:
            r = next(x for x in records if (x["shape"], x["batch"], x["seq"], x["threads"], x["variant"]) == (shape, batch, seq, threads, v))
            cells.append(f"{r['median_ms']:.1f} ms ({r['vs_ort_int8']:.2f}x)")
        lines.append(f"| {shape} | {batch} x {seq} | {threads} | " + " | ".join(cells) + " |")
    if any("vs_ct2_int8" in r for r in records):
        packed = [v for v in variants if v.startswith("bitmaps")]
        lines += ["", "Against CTranslate2 int8 (its median in the same rounds / the variant's):", "",
                  "| shape | batch x seq | threads | CTranslate2 int8 | " + " | ".join(packed) + " |",
                  "|---|---|---|---|" + "---|" * len(packed)]
        for shape, batch, seq, threads in configs:
            row = {x["variant"]: x for x in records if (x["shape"], x["batch"], x["seq"], x["threads"]) == (shape, batch, seq, threads)}
            lines.append(f"| {shape} | {batch} x {seq} | {threads} | {row['ct2_int8']['median_ms']:.1f} ms | "
                         + " | ".join(f"{row[v]['vs_ct2_int8']:.2f}x" for v in packed) + " |")
    lines += ["", "| shape | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for shape, sizes in result["shapes"].items():
        lines.append(
            f"| {shape}: file MiB / peak RSS MB | "
            + " | ".join(f"{sizes['file_bytes'][v] / 2**20:.1f} / {sizes['peak_rss_mb'][v]:.0f}" for v in variants)
            + " |"
        )
    table = "\n".join(lines)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(11, 5.5))
        width = 0.8 / len(variants)
        # one hue per scheme or peer (tab10), each further kernel path of a scheme a lighter shade
        hues = plt.get_cmap("tab10").colors
        names = list(dict.fromkeys(v.partition("@")[0] for v in variants))
        paths = list(dict.fromkeys(v.partition("@")[2] for v in variants if "@" in v))

        def colour(variant: str):
            name, _, path = variant.partition("@")
            hue = hues[names.index(name) % len(hues)]
            lighter = 0.55 * paths.index(path) / len(paths) if path else 0.0
            return tuple(c + (1.0 - c) * lighter for c in hue)

        for i, v in enumerate(variants):
            values = [next(x["vs_ort_int8"] for x in records if (x["shape"], x["batch"], x["seq"], x["threads"], x["variant"]) == c + (v,)) for c in configs]
            ax.bar([k + i * width for k in range(len(configs))], values, width, label=v, color=colour(v))
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks([k + 0.4 - width / 2 for k in range(len(configs))])
        ax.set_xticklabels([f"{s}\nb{b} t{t}" for s, b, _, t in configs], fontsize=8)
        ax.set_ylabel("speed vs ONNX Runtime int8 (higher is faster)")
        limited = result["machine"].get("peers_isa")
        unlimited = ", ".join(name.split(" (")[0] for name in limited["not_limited"]) if limited else ""
        peers_note = ("" if not limited else f"; CPUID masked to {limited['limit']}" if limited.get("cpuid_masked")
                      else f"; peers limited to {limited['limit']} but {unlimited}")
        ax.set_title(f"Encoder forward, seq 128: {result['machine']['cpu']}, kernel path "
                     f"{', '.join(result['machine'].get('kernel_paths') or [result['machine']['kernel_path']])}{peers_note}", fontsize=9)
        ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.14))  # below the axes, off the bars
        fig.tight_layout()
        fig.savefig(out / f"{stem}.png", dpi=110)
    except ImportError:
        print("matplotlib is not installed: no plot")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--paths", nargs="+", help="kernel paths for the packed variants (default: the one in use)")
    parser.add_argument("--name", default="runtime", help="stem of the JSON and PNG written under --out")
    parser.add_argument("--render", help="re-render the table and plot (OUT/<its name>.png) from this JSON")
    parser.add_argument("--peers-isa", choices=sorted(PEER_ISA_SWITCHES),
                        help="run as on a CPU with only this instruction set: CPUID masked where Linux allows it, "
                             "the peers' switches set; the packed variants default to it too")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.render:
        print(render(json.loads(Path(args.render).read_text()), out, Path(args.render).stem))
        return
    limit = limit_peer_isa(args.peers_isa) if args.peers_isa else None  # before the peers' libraries load (may restart)
    from bitmaps_runtime.native import available_paths, backend
    import ctranslate2
    import onnxruntime
    import torch

    paths = args.paths or ([args.peers_isa] if args.peers_isa else [backend()])
    missing = [p for p in paths if p not in available_paths()]
    if missing:
        parser.error(f"--paths {' '.join(missing)}: not available here (available: {', '.join(available_paths())})")
    if len(paths) == 1:  # one path: the process's, and the peak-RSS child processes'
        use_kernel_path(paths[0])
    result = {
        "what": __doc__.strip().splitlines()[0],
        "machine": {
            "cpu": cpu_name(), "flags": cpu_flags(), "cores": os.cpu_count(), "kernel_path": backend(), "kernel_paths": paths,
            "python": platform.python_version(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "ctranslate2": ctranslate2.__version__,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "ort_allow_spinning": 0,
            "one_thread_rounds_on_one_cpu": True,
        },
        "shapes": {}, "records": [],
    }
    if limit:
        result["machine"]["peers_isa"] = peers_isa_record(args.peers_isa, limit)
        print(f"peers limited to {args.peers_isa}: {result['machine']['peers_isa']}", flush=True)
    for shape in args.shapes:
        measured = measure(shape, args.batches, args.threads, args.rounds, args.seq, paths)
        result["records"] += measured.pop("records")
        result["shapes"][shape] = measured
    ratios(result["records"])
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    print(render(result, out, args.name))


if __name__ == "__main__":
    main()

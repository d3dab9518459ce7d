"""The benchmarks' peers compute the encoder they are compared with: a peer that ran another
model, or dropped a layer in conversion, would make every speed ratio against it meaningless."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_runtime  # noqa: E402

from tests.tiny_bert import TINY_BERT_CONFIG  # noqa: E402


def _encoder() -> BertModel:
    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=120, **TINY_BERT_CONFIG), add_pooling_layer=False).eval()


def _torch_hidden(bert, ids, mask):
    with torch.inference_mode():
        return bert(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state.numpy()


def test_ctranslate2_int8_runs_the_benchmarked_encoder(tmp_path):
    pytest.importorskip("ctranslate2", reason="CTranslate2 is in the `bench` extra")
    bert = _encoder()
    size = bench_runtime.write_peer_files(bert, tmp_path, peers=["ct2_int8"])["ct2_int8"]
    assert size == sum(f.stat().st_size for f in (tmp_path / "ct2_int8").iterdir()) > 0
    run = bench_runtime.load("ct2_int8", "", tmp_path, threads=1)
    ids = np.random.default_rng(0).integers(5, 120, size=(2, 40), dtype=np.int64)
    mask = np.ones_like(ids)
    hidden, expected = run(ids, mask), _torch_hidden(bert, ids, mask)
    assert hidden.shape == expected.shape
    # int8 weights and activations: close to the float encoder, far closer than another encoder
    error = np.abs(hidden - expected).max()
    assert error < 0.15, error
    torch.manual_seed(1)
    other = BertModel(BertConfig(vocab_size=120, **TINY_BERT_CONFIG), add_pooling_layer=False).eval()
    assert np.abs(hidden - _torch_hidden(other, ids, mask)).max() > 10 * error


def test_onnx_runtime_int8_peers_run_the_benchmarked_encoder(tmp_path):
    # the fused graphs (ONNX Runtime's BERT optimizer, then quantize_dynamic) run every layer's
    # attention as one QAttention: they must still compute this encoder, padding included
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is in the `bench` extra")
    import onnx

    bert = _encoder()
    sizes = bench_runtime.write_peer_files(bert, tmp_path, peers=bench_runtime.ORT_INT8)
    assert sorted(sizes) == sorted(bench_runtime.ORT_INT8 + ["ort_fp32"])
    fused = onnx.load(str(tmp_path / "ort_int8_fused_tensor.onnx"))
    assert sum(node.op_type == "QAttention" for node in fused.graph.node) == bert.config.num_hidden_layers
    ids = np.random.default_rng(0).integers(5, 120, size=(2, 40), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 25:] = 0
    expected = _torch_hidden(bert, ids, mask)
    for peer in bench_runtime.ORT_INT8:
        hidden = bench_runtime.load(peer, "", tmp_path, threads=1)(ids, mask)
        error = np.abs(hidden - expected)[mask.astype(bool)].max()  # padded positions are not compared
        assert error < 0.15, (peer, error)


def test_the_onnx_runtime_int8_figure_is_its_fastest_variant():
    assert bench_runtime.fastest_ort_int8({"ort_int8_tensor": 13.0, "ort_int8_channel": 13.2, "ort_int8_fused_tensor": 12.5,
                                           "ort_int8_fused_channel": 12.9, "ort_fp32": 5.0}) == "ort_int8_fused_tensor"
    # a run from before the fused variants
    assert bench_runtime.fastest_ort_int8({"ort_int8_tensor": 13.0, "ort_int8_channel": 12.8}) == "ort_int8_channel"


def test_peer_spinning_blocks_alternate_and_rotate():
    import peer_spinning

    calls = []
    runners = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    samples = peer_spinning.blocks_ms(runners, blocks=3, calls=4, pause=0.0)
    assert {name: len(values) for name, values in samples.items()} == {"a": 3, "b": 3, "c": 3}
    # each block is 3 warm-up calls and 4 timed ones of one runner; the first runner rotates
    blocks = [calls[i] for i in range(0, len(calls), 7)]
    assert all(calls[i:i + 7] == [calls[i]] * 7 for i in range(0, len(calls), 7))
    assert blocks == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]


def test_one_cpu_pins_every_thread_then_restores_each():
    import threading

    from timing import one_cpu

    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs Linux and at least two CPUs")
    started, release = threading.Event(), threading.Event()
    worker = {}

    def run():  # a thread that exists before the block, as a peer's worker thread does
        worker["tid"] = threading.get_native_id()
        started.set()
        release.wait()

    thread = threading.Thread(target=run)
    thread.start()
    started.wait()
    before = os.sched_getaffinity(0)
    try:
        with one_cpu():
            pinned = os.sched_getaffinity(0)
            assert len(pinned) == 1 and os.sched_getaffinity(worker["tid"]) == pinned
        assert os.sched_getaffinity(0) == before == os.sched_getaffinity(worker["tid"])
        with one_cpu(enabled=False):
            assert os.sched_getaffinity(0) == before
    finally:
        release.set()
        thread.join()


def test_limit_peer_isa_reaches_the_peers_and_refuses_once_they_are_loaded():
    """`--peers-isa avx2` is only honest if the limit reaches the libraries: in a fresh process,
    torch reports the limited capability and CTranslate2's oneDNN the limited ISA (on an AVX-512
    machine both would otherwise report AVX-512). Where CPUID can be masked, the process and a
    thread and a child it starts later see no AVX-512, and Bitmaps' own dispatch defaults to avx2.
    Here torch is already loaded, so limiting must refuse rather than set switches that nothing
    reads any more."""
    import subprocess

    from timing import cpuid_masking_possible, limit_peer_isa

    with pytest.raises(RuntimeError, match="must run before .*torch"):
        limit_peer_isa("avx2")
    with pytest.raises(ValueError, match="expected one of"):
        limit_peer_isa("sse9")
    pytest.importorskip("ctranslate2", reason="CTranslate2 is in the `bench` extra")
    if "avx2" not in bench_runtime.cpu_flags():
        pytest.skip("needs an x86 CPU with AVX2")
    code = (
        "import os, sys, threading, subprocess; sys.path.insert(0, sys.argv[1]); import timing\n"
        "limit = timing.limit_peer_isa('avx2')\n"
        "import bench_runtime, torch; from bitmaps_runtime import native\n"
        "seen = {}; t = threading.Thread(target=lambda: seen.update(timing.cpuid_mask_state())); t.start(); t.join()\n"
        "child = subprocess.run([sys.executable, '-c', 'import torch; print(torch.backends.cpu.get_cpu_capability())'],\n"
        "    env={k: v for k, v in os.environ.items() if k != 'ATEN_CPU_CAPABILITY'}, capture_output=True, text=True)\n"
        "print(limit['cpuid_masked'], limit['not_limited'] == [], seen.get('avx512f'), native.backend(), child.stdout.strip())\n"
        "print(torch.backends.cpu.get_cpu_capability()); print(bench_runtime.ct2_onednn_isa())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "LD_PRELOAD",
                                                            "BITMAPS_CPUID_MASK", "BITMAPS_KERNELS")}
    result = subprocess.run([sys.executable, "-c", code, str(Path(bench_runtime.__file__).parent)], env=env,
                            capture_output=True, text=True, check=True, timeout=300)
    masked, torch_capability, onednn_isa = result.stdout.strip().splitlines()[-3:]
    assert torch_capability == "AVX2"
    # on Intel CPUs CTranslate2's GEMMs are MKL's (limited by MKL_ENABLE_INSTRUCTIONS), and oneDNN
    # may not start at all: then there is no oneDNN report to check
    assert onednn_isa.startswith("not reported") or ("AVX2" in onednn_isa and "512" not in onednn_isa), onednn_isa
    if cpuid_masking_possible():
        # masked, no peer left unlimited, a later thread sees no AVX512F, our dispatch picks avx2,
        # and a child without the torch switch still reports AVX2
        assert masked == "True True False avx2 AVX2", result.stdout
    else:
        assert masked.startswith("False False"), result.stdout

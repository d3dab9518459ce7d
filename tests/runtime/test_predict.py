"""`bitmaps-predict`: the torch-free runtime on an exported archive gives `allennlp predict`'s answers,
including from a fresh virtual environment that has no torch at all."""
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from allennlp.common import Params
from allennlp.commands.train import train_model
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor

from bitmaps_allennlp.commands.packed_archive import export_archive
from bitmaps_runtime import native
from bitmaps_runtime.predict import main
from tests.model_configs import tiny_masked_lm_config

pytestmark = pytest.mark.skipif(native.native_module() is None, reason="the native extension is not built")

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
SENTENCES = [
    "the capital of france is [MASK] .",
    "[MASK] is the capital of [MASK] .",
    "paris is [MASK] .",
]
# 21 wordpieces with [CLS] and [SEP], past the test archive's max_length of 16
LONG = "the capital of france is paris , and paris is the capital of france , said the lazy fox"


@pytest.fixture(scope="module")
def packed_archive(tiny_bert_dir, corpus_path, valid_corpus_path, tmp_path_factory):
    config = tiny_masked_lm_config(
        tiny_bert_dir, corpus_path, valid_corpus_path, activations="sign", center_weights=True, attention="bi_attention",
        attention_activations="sign",
    )
    config["trainer"]["num_epochs"] = 1
    run = tmp_path_factory.mktemp("predict")
    train_model(Params(config), serialization_dir=str(run / "run"))
    export_archive(run / "run" / "model.tar.gz", run / "exported.tar.gz")
    return _with_padding_tokenizer(run / "exported.tar.gz", run / "packed.tar.gz")


def _with_padding_tokenizer(source, target):
    """The archive with a tokenizer that pads and truncates every input to a fixed length longer
    than the model's max_length, as all-MiniLM-L6-v2's saved `tokenizer.json` does (to 128)."""
    with tarfile.open(source) as original, tarfile.open(target, "w:gz") as rewritten:
        for member in original.getmembers():
            data = original.extractfile(member).read() if member.isfile() else None
            if member.name.endswith("tokenizer.json"):
                saved = json.loads(data)
                saved["padding"] = {
                    "strategy": {"Fixed": 100}, "direction": "Right", "pad_to_multiple_of": None,
                    "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]",
                }
                saved["truncation"] = {"direction": "Right", "max_length": 100, "strategy": "LongestFirst", "stride": 0}
                data = json.dumps(saved).encode()
                member.size = len(data)
            rewritten.addfile(member, io.BytesIO(data) if data is not None else None)
    return target


def _allennlp_predictions(archive):
    predictor = Predictor.from_archive(load_archive(archive))
    return [predictor.predict_json({"sentence": s})["predictions"] for s in SENTENCES]


def _run_cli(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_fill_mask_equals_allennlp_predict(packed_archive, capsys):
    expected = _allennlp_predictions(packed_archive)
    code, lines, err = _run_cli([packed_archive, *SENTENCES], capsys)
    assert code == 0, err
    assert [line["sentence"] for line in lines] == SENTENCES
    for got, want in zip(lines, expected):
        assert len(got["predictions"]) == len(want)
        for mask_got, mask_want in zip(got["predictions"], want):
            assert mask_got["tokens"][0] == mask_want["tokens"][0]
            np.testing.assert_allclose(mask_got["probabilities"], mask_want["probabilities"], rtol=1e-3, atol=1e-6)


def test_options_may_come_before_the_sentences(packed_archive, capsys):
    # `bitmaps-predict ARCHIVE --embeddings "a sentence"`: argparse's plain parse_args would take
    # the sentences list as empty at the option and reject the sentence after it
    code, before, err = _run_cli([packed_archive, "--embeddings", "--batch-size", "2", *SENTENCES], capsys)
    assert code == 0, err
    code, after, err = _run_cli([packed_archive, *SENTENCES, "--embeddings", "--batch-size", "2"], capsys)
    assert code == 0, err
    assert [line["sentence"] for line in before] == SENTENCES and before == after
    code, masks, err = _run_cli([packed_archive, "--top-k", "2", SENTENCES[0]], capsys)
    assert code == 0 and len(masks[0]["predictions"][0]["tokens"]) == 2, err


def test_embeddings_and_hidden_states(packed_archive, tmp_path, capsys):
    source = tmp_path / "sentences.jsonl"
    source.write_text("\n".join(json.dumps({"sentence": s}) for s in SENTENCES) + "\n")
    code, pooled, err = _run_cli([packed_archive, "--input", source, "--embeddings", "--batch-size", "2"], capsys)
    assert code == 0, err
    code, states, err = _run_cli([packed_archive, "--input", source, "--hidden-states"], capsys)
    assert code == 0, err
    for vector, state in zip(pooled, states):
        hidden = np.array(state["hidden_states"])
        assert hidden.shape[0] == len(state["tokens"]) and state["tokens"][0] == "[CLS]"
        # padding in another batch must not change a sentence's result
        np.testing.assert_allclose(vector["embedding"], hidden.mean(axis=0), atol=1e-5)


def test_encode_gives_the_embeddings_as_an_array(packed_archive, capsys):
    from bitmaps_runtime.predict import InputError, Predictor as PackedPredictor

    predictor = PackedPredictor.from_path(str(packed_archive), threads=1)
    vectors = predictor.encode(SENTENCES, batch_size=2)
    assert vectors.dtype == np.float32 and vectors.shape == (3, predictor.encoder.hidden_size)
    code, lines, err = _run_cli([packed_archive, "--embeddings", *SENTENCES], capsys)
    assert code == 0, err
    np.testing.assert_allclose(vectors, [line["embedding"] for line in lines], atol=1e-5)
    np.testing.assert_allclose(predictor.encode(SENTENCES, batch_size=1), vectors, atol=1e-5)
    assert predictor.encode([]).shape == (0, predictor.encoder.hidden_size)
    # a bad sentence is named by its place in the whole list, not in its batch
    with pytest.raises(InputError, match="more than max_length=16") as error:
        predictor.encode(SENTENCES + [LONG], batch_size=2)
    assert error.value.index == 3


def test_allennlp_predict_batches_with_padding_as_one_by_one(packed_archive):
    # the packed model's masked logits leave the padding out of the encoder (the sentences differ
    # in length, so a batch pads): the same predictions as each sentence alone
    predictor = Predictor.from_archive(load_archive(packed_archive))
    assert predictor._model.engine == "runtime"
    sentences = [{"sentence": s} for s in SENTENCES + ["a [MASK] ."]]
    batched = predictor.predict_batch_json(sentences)
    for alone, together in zip((predictor.predict_json(s) for s in sentences), batched):
        for mask_alone, mask_together in zip(alone["predictions"], together["predictions"]):
            assert mask_alone["tokens"] == mask_together["tokens"]
            np.testing.assert_allclose(mask_together["probabilities"], mask_alone["probabilities"], rtol=1e-4, atol=1e-6)


def test_mixed_lengths_in_a_batch_give_what_each_sentence_gives_alone(packed_archive, tmp_path, capsys):
    # a batch pads its sentences to the longest; the padding is left out of the encoder
    sentences = ["paris is [MASK] .", "the capital of france is [MASK] , said the [MASK] .", "a [MASK] .",
                 "[MASK] is the capital of [MASK] .", "the [MASK] of paris ."]
    source = tmp_path / "mixed.txt"
    source.write_text("\n".join(sentences) + "\n")
    one_by_one = _run_cli([packed_archive, "--input", source, "--embeddings", "--batch-size", "1"], capsys)
    batched = _run_cli([packed_archive, "--input", source, "--embeddings", "--batch-size", "3"], capsys)
    masks = _run_cli([packed_archive, "--input", source, "--batch-size", "5"], capsys)
    for code, lines, err in (one_by_one, batched, masks):
        assert code == 0, err
        assert [line["sentence"] for line in lines] == sentences
    for alone, together in zip(one_by_one[1], batched[1]):
        np.testing.assert_allclose(together["embedding"], alone["embedding"], atol=1e-5)
    assert [len(line["predictions"]) for line in masks[1]] == [s.count("[MASK]") for s in sentences]


@pytest.mark.parametrize(
    "args,message",
    [
        (["{archive}", "no mask here"], "has no [MASK] token to fill"),
        (["{archive}", "the quick brown fox jumps over the lazy [MASK] , twice ."], "more than max_length=16"),
        (["{missing}", "a [MASK]"], "no such file"),
        (["{training}", "a [MASK]"], "not 'bitmaps_packed_masked_lm'"),
        (["{truncated}", "a [MASK]"], "truncated or corrupt archive"),
        (["{bad_tokenizer}", "a [MASK]"], "is not a tokenizers file"),
    ],
)
def test_errors_name_the_problem(args, message, packed_archive, tmp_path, tiny_bert_dir, corpus_path, valid_corpus_path, capsys):
    training = tmp_path / "training.tar.gz"
    with tarfile.open(training, "w:gz") as tar:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"model": {"type": "bitmaps_masked_lm"}}))
        tar.add(config, arcname="config.json")
    # a download cut short: gzip and tar fail only once the reader reaches the missing part
    truncated = tmp_path / "truncated.tar.gz"
    data = Path(packed_archive).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    bad_tokenizer = tmp_path / "bad_tokenizer.tar.gz"
    with tarfile.open(packed_archive) as original, tarfile.open(bad_tokenizer, "w:gz") as rewritten:
        for member in original.getmembers():
            content = original.extractfile(member).read() if member.isfile() else None
            if member.name.endswith("tokenizer.json"):
                content = b'{"not": "a tokenizer"}'
                member.size = len(content)
            rewritten.addfile(member, io.BytesIO(content) if content is not None else None)
    values = {
        "archive": packed_archive, "missing": tmp_path / "nope.tar.gz", "training": training, "truncated": truncated,
        "bad_tokenizer": bad_tokenizer,
    }
    code, _, err = _run_cli([a.format(**values) for a in args], capsys)
    assert code == 2 and message in err, err


def test_truncate_cuts_long_sentences_and_keeps_their_masks(packed_archive, tmp_path, capsys):
    # the archive's max_length is 16 wordpieces: LONG is refused without --truncate, naming its place
    code, _, err = _run_cli([packed_archive, "--embeddings", SENTENCES[0], LONG], capsys)
    assert code == 2 and "sentence 2: 'the capital" in err and "more than max_length=16 (--truncate cuts it)" in err, err
    code, states, err = _run_cli([packed_archive, "--hidden-states", "--truncate", SENTENCES[0], LONG], capsys)
    assert code == 0 and "2 sentences in" in err and "1 truncated to 16 wordpieces" in err, err
    cut = states[1]["tokens"]
    assert len(cut) == 16 and cut[0] == "[CLS]" and cut[-1] == "[SEP]" and "lazy" not in cut
    assert states[0]["tokens"][-1] == "[SEP]" and len(states[0]["tokens"]) < 16
    # the cut sentence computes what its first 14 wordpieces give as a sentence of their own
    code, alone, err = _run_cli([packed_archive, "--hidden-states", " ".join(cut[1:-1])], capsys)
    assert code == 0 and alone[0]["tokens"] == cut, err
    np.testing.assert_allclose(states[1]["hidden_states"], alone[0]["hidden_states"], atol=1e-5)
    # fill-mask: a [MASK] inside the first 16 wordpieces is filled; one past them is refused, not dropped
    code, lines, err = _run_cli([packed_archive, "--truncate", "[MASK] " + LONG], capsys)
    assert code == 0 and len(lines[0]["predictions"]) == 1, err
    code, _, err = _run_cli([packed_archive, "--truncate", "[MASK] " + LONG + " [MASK] ."], capsys)
    assert code == 2 and "has a [MASK] past max_length=16 wordpieces, which --truncate would cut" in err, err


def test_truncate_cuts_as_allennlp_predict_with_the_readers_truncate(packed_archive, tmp_path, capsys):
    sentences = ["[MASK] " + LONG, "paris is [MASK] . " + LONG]
    code, lines, err = _run_cli([packed_archive, "--truncate", *sentences], capsys)
    assert code == 0 and "2 truncated to 16 wordpieces" in err, err
    with tarfile.open(packed_archive) as tar:
        config = json.load(tar.extractfile("config.json"))
    # the reader that prediction uses: the validation one where the config has it
    reader = "validation_dataset_reader" if "validation_dataset_reader" in config else "dataset_reader"
    predictor = Predictor.from_archive(load_archive(packed_archive, overrides={f"{reader}.truncate": True}))
    for line, sentence in zip(lines, sentences):
        want = predictor.predict_json({"sentence": sentence})["predictions"]
        assert [m["tokens"][0] for m in line["predictions"]] == [m["tokens"][0] for m in want]
        np.testing.assert_allclose(line["predictions"][0]["probabilities"], want[0]["probabilities"], rtol=1e-3, atol=1e-6)
    # an archive whose reader truncates: bitmaps-predict does so without --truncate, as allennlp predict
    rewritten = tmp_path / "truncating.tar.gz"
    with tarfile.open(packed_archive) as original, tarfile.open(rewritten, "w:gz") as target:
        for member in original.getmembers():
            data = original.extractfile(member).read() if member.isfile() else None
            if member.name == "config.json":
                data = json.dumps({**config, reader: {**config[reader], "truncate": True}}).encode()
                member.size = len(data)
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    code, again, err = _run_cli([rewritten, *sentences], capsys)
    assert code == 0 and again == lines, err


def test_input_errors_name_the_file_and_line(packed_archive, tmp_path, capsys):
    source = tmp_path / "sentences.txt"
    source.write_text(SENTENCES[0] + "\n\n" + json.dumps({"sentence": "no mask here"}) + "\n")
    code, _, err = _run_cli([packed_archive, "--input", source, "--batch-size", "2"], capsys)
    assert code == 2 and f"{source}:3: 'no mask here' has no [MASK] token to fill" in err, err
    # a bad byte is reported on its own line, not where the decoder's buffer happened to end
    source.write_bytes((SENTENCES[0] + "\n").encode() * 500 + b"caf\xe9 [MASK] .\n")
    code, _, err = _run_cli([packed_archive, "--input", source], capsys)
    assert code == 2 and f"{source}:501: not UTF-8 text" in err, err
    # a byte-order mark (Windows editors) is not part of the first sentence
    source.write_bytes(b"\xef\xbb\xbf" + SENTENCES[0].encode() + b"\n")
    code, lines, err = _run_cli([packed_archive, "--input", source], capsys)
    assert code == 0 and lines[0]["sentence"] == SENTENCES[0], err
    for missing, message in ((tmp_path / "nope.txt", "no such file"), (tmp_path, "is a directory")):
        code, _, err = _run_cli([packed_archive, "--input", missing], capsys)
        assert code == 2 and f"--input {missing}: {message}" in err, err


def test_long_inputs_report_progress(packed_archive, tmp_path, capsys, monkeypatch):
    source = tmp_path / "sentences.txt"
    source.write_text("\n".join(SENTENCES * 3) + "\n")
    code, lines, err = _run_cli([packed_archive, "--input", source, "--batch-size", "4"], capsys)
    assert code == 0 and len(lines) == 9 and "a second" not in err, err
    monkeypatch.setattr("bitmaps_runtime.predict.PROGRESS_SECONDS", 0.0)
    code, lines, err = _run_cli([packed_archive, "--input", source, "--batch-size", "4"], capsys)
    progress = [line for line in err.splitlines() if "a second" in line]
    assert code == 0 and [line.split(",")[0] for line in progress] == [
        "bitmaps-predict: 4 sentences", "bitmaps-predict: 8 sentences", "bitmaps-predict: 9 sentences"
    ], err


@pytest.mark.parametrize(
    "variable,value,message",
    [
        ("BITMAPS_KERNELS", "no_such_path", "BITMAPS_KERNELS: kernel path 'no_such_path' is not available"),
        ("BITMAPS_THREADS", "two", "BITMAPS_THREADS='two': expected a whole number of threads >= 1"),
        ("BITMAPS_THREADS", "0", "BITMAPS_THREADS='0': expected a whole number of threads >= 1"),
        ("BITMAPS_SPIN_US", "-5", "BITMAPS_SPIN_US='-5': expected microseconds"),
    ],
)
def test_bad_settings_are_named(variable, value, message, packed_archive):
    # each in a fresh process: the kernel path and the pool's settings are read once a process
    code = f"import sys; from bitmaps_runtime.predict import main; sys.exit(main([{str(packed_archive)!r}, 'a [MASK] .']))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, variable: value})
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_output_is_written_whole_or_not_at_all(packed_archive, tmp_path, capsys):
    # a bad line late in the input must not leave the earlier --output file half overwritten
    output = tmp_path / "predictions.jsonl"
    output.write_text("an earlier run's lines\n")
    source = tmp_path / "input.jsonl"
    source.write_text(json.dumps({"sentence": SENTENCES[0]}) + "\n" + json.dumps({"sentence": 3}) + "\n")
    code, _, err = _run_cli([packed_archive, "--input", source, "--output", output, "--batch-size", "1"], capsys)
    assert code == 2 and f"{source}:2: expected a JSON object with a string field" in err, err
    assert output.read_text() == "an earlier run's lines\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.jsonl", "predictions.jsonl"]
    code, _, err = _run_cli([packed_archive, SENTENCES[0], "--output", output], capsys)
    assert code == 0, err
    assert json.loads(output.read_text())["sentence"] == SENTENCES[0]
    code, _, err = _run_cli([packed_archive, SENTENCES[0], "--output", tmp_path / "no" / "such.jsonl"], capsys)
    assert code == 2 and "no such folder" in err, err


def test_the_runtime_imports_no_torch(packed_archive):
    code = (
        "import sys; from bitmaps_runtime.predict import main; "
        f"main([{str(packed_archive)!r}, 'a [MASK] .']); print('torch' in sys.modules, 'allennlp' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "False False", result.stderr


def test_torch_free_install_predicts_what_allennlp_predicts(packed_archive, tmp_path):
    """`pip install ./runtime` into a fresh environment without torch, then `bitmaps-predict`."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (make install puts it in .venv)")
    # a copy, so the build leaves nothing in the checkout
    source = tmp_path / "runtime"
    shutil.copytree(RUNTIME, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "*.so", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), str(source)], check=True)
    probe = subprocess.run([str(python), "-c", "import torch"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
    result = subprocess.run(
        [str(venv / "bin" / "bitmaps-predict"), str(packed_archive), *SENTENCES], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = _allennlp_predictions(packed_archive)
    assert [[m["tokens"][0] for m in line["predictions"]] for line in lines] == [[m["tokens"][0] for m in e] for e in expected]

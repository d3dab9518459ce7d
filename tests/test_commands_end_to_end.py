"""The path a user walks, through the real `allennlp` command line: train, evaluate, predict."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bitmaps_allennlp.commands.export_command import _export_from_args
from bitmaps_allennlp.packed.export import DEFAULT_EMBEDDINGS

from tests.model_configs import tiny_masked_lm_config, write_config

REPO = Path(__file__).resolve().parents[1]


def _allennlp(*args: str, expect_success: bool = True) -> subprocess.CompletedProcess:
    # .allennlp_plugins in the repository root is what makes `allennlp` import our package
    result = subprocess.run(
        [sys.executable, "-m", "allennlp", *args], cwd=REPO, capture_output=True, text=True
    )
    assert (result.returncode == 0) == expect_success, result.stderr[-3000:]
    return result


def test_train_evaluate_predict(tiny_bert_dir, corpus_path, valid_corpus_path, tmp_path):
    config = tiny_masked_lm_config(tiny_bert_dir, corpus_path, valid_corpus_path)
    config["dataset_reader"]["deterministic_masking"] = False
    config["validation_dataset_reader"] = dict(config["dataset_reader"], deterministic_masking=True)
    param_file = write_config(config, tmp_path)
    run = tmp_path / "run"
    _allennlp("train", str(param_file), "-s", str(run))
    archive = run / "model.tar.gz"
    assert archive.is_file()

    # evaluation uses the deterministic validation reader: the same perplexity every time
    perplexities = []
    for attempt in range(2):
        metrics_file = tmp_path / f"metrics{attempt}.json"
        _allennlp("evaluate", str(archive), str(valid_corpus_path), "--output-file", str(metrics_file))
        perplexities.append(json.loads(metrics_file.read_text())["perplexity"])
    assert perplexities[0] == perplexities[1]
    assert 1.0 < perplexities[0] < 10 * 186

    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text(
        json.dumps({"sentence": "the capital of france is [MASK] ."})
        + "\n"
        + json.dumps({"sentence": "the [MASK] runs to the [MASK] ."})
        + "\n"
    )
    predictions_file = tmp_path / "predictions.jsonl"
    _allennlp("predict", str(archive), str(inputs), "--output-file", str(predictions_file), "--silent")
    predictions = [json.loads(line) for line in predictions_file.read_text().splitlines()]
    assert [len(p["predictions"]) for p in predictions] == [1, 2]
    assert all(len(mask["tokens"]) == 5 for p in predictions for mask in p["predictions"])

    # the packed 1-bit export evaluates to the same perplexity and predicts the same tokens
    packed = tmp_path / "packed.tar.gz"
    # fp32 tables: the exact-parity check below (the default int8 tables are tested in tests/packed)
    report = _allennlp("bitmaps-export", str(archive), str(packed), "--embeddings", "fp32").stdout
    assert "binarized linear weights" in report and packed.is_file()
    refused = _allennlp("bitmaps-export", str(archive), str(packed), expect_success=False)
    assert "--force" in refused.stderr
    # what cannot be exported is one line naming the archive (a SystemExit message: no traceback),
    # checked in this process, where starting `allennlp` again would cost seconds a case
    for source, message in ((packed, f"bitmaps-export: {packed}: bitmaps-export packs bitmaps_masked_lm models, "
                                     "got PackedMaskedLanguageModel (this archive is already packed)"),
                            (tmp_path / "absent.tar.gz", f"bitmaps-export: {tmp_path / 'absent.tar.gz'}: no such file or directory")):
        args = argparse.Namespace(archive_file=str(source), output_file=str(tmp_path / "again.tar.gz"), force=False,
                                  fp16=False, embeddings=DEFAULT_EMBEDDINGS)
        with pytest.raises(SystemExit) as exit_info:
            _export_from_args(args)
        assert str(exit_info.value) == message
    packed_metrics = tmp_path / "packed_metrics.json"
    _allennlp("evaluate", str(packed), str(valid_corpus_path), "--output-file", str(packed_metrics))
    packed_perplexity = json.loads(packed_metrics.read_text())["perplexity"]
    assert abs(packed_perplexity - perplexities[0]) <= 5e-4 * perplexities[0]
    packed_predictions_file = tmp_path / "packed_predictions.jsonl"
    _allennlp("predict", str(packed), str(inputs), "--output-file", str(packed_predictions_file), "--silent")
    packed_predictions = [json.loads(line) for line in packed_predictions_file.read_text().splitlines()]
    for got, expected in zip(packed_predictions, predictions):
        assert [m["tokens"] for m in got["predictions"]] == [m["tokens"] for m in expected["predictions"]]

    # an empty evaluation file is an error naming it, not a perplexity of NaN
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    refused = _allennlp("evaluate", str(packed), str(empty), expect_success=False)
    assert f"{empty} holds no text" in refused.stderr

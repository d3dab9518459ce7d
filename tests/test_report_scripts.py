"""The report scripts' own logic (the measurements they wrap are tested elsewhere): Pareto fronts,
collecting parity evaluations, the fp16 baseline's rounding, the real-budget runs' report, the
table-sensitivity variants, the demo summary's naming of the packed schemes."""
import argparse
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import baselines  # noqa: E402
import demo_summary  # noqa: E402
import long_results  # noqa: E402
import parity_results  # noqa: E402
import pareto  # noqa: E402
import run_curves  # noqa: E402
import table_sensitivity  # noqa: E402


def test_pareto_front_keeps_only_undominated_points():
    # (latency or size, perplexity)
    points = [(10.0, 100.0), (20.0, 50.0), (15.0, 120.0), (20.0, 60.0), (5.0, 500.0), (10.0, 100.0)]
    assert pareto._pareto(points) == [True, True, False, False, True, True]


def test_parity_records_are_collected_from_the_table_folder(tmp_path):
    table = tmp_path / "table"
    table.mkdir()
    for name, value in {
        "bit_stage1__WikiText-2_test": 160.0,
        "bit_stage1_packed__WikiText-2_test": 160.55,
        "bit_stage1_packed_fp32_tables__WikiText-2_test": 160.0,
        "bit_stage1_packed_int8_col_tables__WikiText-2_test": 160.26,
        "teacher__WikiText-2_test": 70.0,  # not a recipe: left out
        "bit_stage1__results": 1.0,  # not a split: left out
    }.items():
        (table / f"{name}.json").write_text(json.dumps({"perplexity": value, "accuracy": 0.2}))
    records = parity_results.collect(tmp_path)
    assert {(r["recipe"], r["model"], r["data"], r["perplexity"], r["bits"]) for r in records} == {
        ("bit_stage1", "source", "WikiText-2 test", 160.0, "W1A8"),
        ("bit_stage1", "packed, int8 tables (default)", "WikiText-2 test", 160.55, "W1A8"),
        ("bit_stage1", "packed, int8_col tables", "WikiText-2 test", 160.26, "W1A8"),
        ("bit_stage1", "packed, fp32 tables", "WikiText-2 test", 160.0, "W1A8"),
    }
    judged = {r["model"]: (r["rounded_to_3_digits_equal"], r["within_half_unit_of_3rd_digit"]) for r in records if r["model"] != "source"}
    assert judged == {"packed, int8 tables (default)": (False, False), "packed, int8_col tables": (True, True),
                      "packed, fp32 tables": (True, True)}
    assert "(+0.34%)" in parity_results.table(records)


@pytest.mark.parametrize("value, source, expected", [
    (160.4, 160.0, (True, True)),
    (160.6, 160.0, (False, False)),
    (943.49, 943.67, (False, True)),  # straddles 943.5
    (2201.18, 2200.06, (True, True)),  # 2200 both; the unit is 10
    (2206.0, 2200.06, (False, False)),
    (0.12345, 0.1234, (True, True)),
])
def test_three_significant_digits(value, source, expected):
    assert parity_results.three_digits(value, source) == expected


def test_fp16_baseline_rounds_every_float_tensor():
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 4)
    original = model.weight.detach().clone()
    baselines.fp16(model)
    assert torch.equal(model.weight, original.half().float())
    assert not torch.equal(model.weight, original)


def _run_folder(folder: Path, epochs: int, finished: bool, validation: list) -> None:
    folder.mkdir(parents=True)
    config = {"dataset_reader": {"max_length": 128}, "data_loader": {"batch_size": 16, "batches_per_epoch": 250},
              "trainer": {"num_epochs": epochs}}
    (folder / "config.json").write_text(json.dumps(config))
    for epoch, perplexity in enumerate(validation):
        metrics = {"epoch": epoch, "validation_perplexity": perplexity, "training_duration": f"0:{10 * (epoch + 1)}:00"}
        (folder / f"metrics_epoch_{epoch}.json").write_text(json.dumps(metrics))
    if finished:
        (folder / "model.tar.gz").write_bytes(b"not read: its evaluations are cached")
        (folder / "metrics.json").write_text(json.dumps({"training_duration": "1:20:00"}))


def test_long_runs_report_curves_status_and_target_ratios(tmp_path):
    runs = tmp_path / "long"
    _run_folder(runs / "bit_stage1", 8, True, [300.0, 200.0, 150.0])
    _run_folder(runs / "bit_stage2", 8, False, [900.0])  # interrupted: a curve, no evaluation
    teacher = tmp_path / "teacher.tar.gz"
    teacher.write_bytes(b"")
    table = runs / "table"
    table.mkdir()
    cached = {"teacher": (70.0, 380.0), "bit_stage1": (80.0, 500.0)}
    for name, (wikitext, ptb) in cached.items():
        (table / f"{name}__WikiText-2_test.json").write_text(json.dumps({"perplexity": wikitext}))
        (table / f"{name}__PTB_test.json").write_text(json.dumps({"perplexity": ptb}))
    curves, records = long_results.collect(runs, teacher, tmp_path / "data")
    assert [(c["run"], c["status"]) for c in curves] == [("bit_stage1", "finished"), ("bit_stage2", "in progress: 1 of 8 epochs")]
    assert [row["validation_perplexity"] for row in curves[0]["curve"]] == [300.0, 200.0, 150.0]
    wikitext = next(r for r in records if r["model"].startswith("BiT stage 1") and r["data"] == "wikitext-2 test")
    assert wikitext["ratio_to_teacher"] == round(80.0 / 70.0, 4)
    assert wikitext["target_ratio"] == 1.15 and wikitext["target_met"] is True
    assert wikitext["trained"]["steps"] == 2000 and wikitext["trained"]["blocks_per_step"] == 16
    ptb = next(r for r in records if r["model"].startswith("BiT stage 1") and r["data"] == "ptb test")
    assert ptb["ratio_to_teacher"] == round(500.0 / 380.0, 4) and "target_met" not in ptb
    assert {r["model"] for r in records if "teacher" in r["model"]} == {"teacher (fp32)"}
    assert "**no**" not in long_results.markdown(curves, records) and "in progress" in long_results.markdown(curves, records)


def test_run_curves_report_each_runs_learning_rate_and_status(tmp_path, monkeypatch):
    _run_folder(tmp_path / "a", 2, True, [209.6, 167.3])
    _run_folder(tmp_path / "b", 8, False, [131.7])
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    config["trainer"]["optimizer"] = {"type": "huggingface_adamw", "lr": 1e-3}
    (tmp_path / "b" / "config.json").write_text(json.dumps(config))
    out = tmp_path / "curves.json"
    monkeypatch.setattr(sys, "argv", ["run_curves.py", "--run", f"config lr={tmp_path / 'a'}",
                                      "--run", f"lr 1e-3={tmp_path / 'b'}", "--json", str(out)])
    run_curves.main()
    runs = json.loads(out.read_text())["runs"]
    assert [(r["label"], r["status"]) for r in runs] == [("config lr", "finished"), ("lr 1e-3", "in progress: 1 of 8 epochs")]
    assert "learning_rate" not in runs[0]["trained"] and runs[1]["trained"]["learning_rate"] == 1e-3
    assert [row["validation_perplexity"] for row in runs[0]["curve"]] == [209.6, 167.3]
    monkeypatch.setattr(sys, "argv", ["run_curves.py", "--run", str(tmp_path / "a"), "--json", str(out)])
    with pytest.raises(SystemExit, match="expected LABEL=FOLDER"):
        run_curves.main()


def test_long_runs_report_keeps_earlier_sessions_runs():
    # the committed JSON of an earlier session: its stage-1 run and its teacher, records written
    # before they named their run
    previous = {
        "runs": [{"run": "bit_stage1", "status": "finished", "curve": [{"validation_perplexity": 90.0}]},
                 {"run": "bitnet_b158", "status": "in progress: 0 of 8 epochs", "curve": []}],
        "records": [{"model": "teacher (fp32)", "data": "wikitext-2 test", "perplexity": 70.0},
                    {"model": "BiT stage 1, 2000 steps", "data": "wikitext-2 test", "perplexity": 85.0}],
    }
    # this session has only BitNet b1.58 (and no teacher evaluation of its own)
    runs = [{"run": "bitnet_b158", "status": "finished", "curve": [{"validation_perplexity": 80.0}]}]
    records = [{"run": "bitnet_b158", "model": "BitNet b1.58, 1000 steps", "data": "wikitext-2 test", "perplexity": 77.0}]
    merged_runs, merged_records = long_results.merge_earlier(previous, runs, records)
    assert [(r["run"], r["status"]) for r in merged_runs] == [("bit_stage1", "finished"), ("bitnet_b158", "finished")]
    assert "earlier session" in merged_runs[0]["measured"] and "measured" not in merged_runs[1]
    assert [r["model"] for r in merged_records] == ["teacher (fp32)", "BitNet b1.58, 1000 steps", "BiT stage 1, 2000 steps"]
    # a session with its own teacher evaluation replaces the earlier teacher records
    own_teacher = [{"model": "teacher (fp32)", "data": "wikitext-2 test", "perplexity": 70.1}] + records
    _, merged_records = long_results.merge_earlier(previous, runs, own_teacher)
    assert [r["perplexity"] for r in merged_records if r["model"].startswith("teacher")] == [70.1]


def test_long_runs_report_keeps_a_finished_run_over_its_unfinished_rerun():
    # stage 1 finished in an earlier session; this session re-runs it (stage 2 needs its archive)
    previous = {"runs": [{"run": "bit_stage1", "status": "finished", "curve": [{"validation_perplexity": 86.7}]}],
                "records": [{"run": "bit_stage1", "model": "BiT stage 1, 2000 steps", "data": "wikitext-2 test",
                             "perplexity": 84.9}]}
    rerun = [{"run": "bit_stage1", "status": "in progress: 1 of 8 epochs", "curve": [{"validation_perplexity": 147.5}]}]
    merged_runs, merged_records = long_results.merge_earlier(previous, rerun, [])
    assert [(r["status"], r["curve"][-1]["validation_perplexity"]) for r in merged_runs] == [("finished", 86.7)]
    assert "unfinished" in merged_runs[0]["measured"] and [r["perplexity"] for r in merged_records] == [84.9]
    # once the re-run finishes, it replaces the earlier entry
    finished = [dict(rerun[0], status="finished")]
    own = [{"run": "bit_stage1", "model": "BiT stage 1, 2000 steps", "data": "wikitext-2 test", "perplexity": 84.0}]
    merged_runs, merged_records = long_results.merge_earlier(previous, finished, own)
    assert "measured" not in merged_runs[0] and [r["perplexity"] for r in merged_records] == [84.0]


def test_pareto_stand_in_needs_the_run_and_both_test_records(tmp_path):
    packed = tmp_path / "packed.tar.gz"
    packed.write_bytes(b"")
    results = tmp_path / "long_runs.json"
    results.write_text(json.dumps({"records": [{"run": "bitnet_b158", "data": "wikitext-2 test", "perplexity": 76.7}]}))
    for spec, message in ((f"nonsense={packed}", "RUN one of"), ("bitnet_b158", "RUN=PACKED_ARCHIVE"),
                          (f"bitnet_b158={tmp_path / 'absent.tar.gz'}", "no such file"),
                          (f"bitnet_b158={packed}", "no record for ptb test")):
        args = argparse.Namespace(stand_ins=[spec], long_results=results)
        with pytest.raises(SystemExit, match=message):
            pareto._stand_ins(args, {})


def _report(tmp_path, models):
    report = tmp_path / "pareto_old.json"
    report.write_text(json.dumps({"machine": {"kernel_path": "avx512_vnni"}, "models": models}))
    return report


def test_pareto_retime_needs_a_stand_in_for_every_archive_folder(tmp_path):
    trained = {"archive": "runs/long/bit_stage1/model.tar.gz"}
    report = _report(tmp_path, [{"model": "BiT stage 1 (packed)", "kind": "packed export", "trained": trained}])
    stand_in = tmp_path / "stand_in"
    stand_in.mkdir()
    cases = (
        ([], "trained in runs/long/bit_stage1: give --stand-in-folders runs/long/bit_stage1=STAND_IN_FOLDER"),
        ([f"runs/long/bit_stage1={tmp_path / 'absent'}"], "no such folder"),
        (["runs/long/bit_stage1"], "expected OLD_FOLDER=STAND_IN_FOLDER"),
        # a packed model is timed through the stand-in's packed archive, which is not there yet
        ([f"runs/long/bit_stage1={stand_in}"], "packed.tar.gz: no such file .model 'BiT stage 1 .packed.' needs it"),
    )
    for folders, message in cases:
        args = argparse.Namespace(retime=report, stand_in_folders=folders)
        with pytest.raises(SystemExit, match=message):
            pareto._retimed_models(args, tmp_path)


def test_pareto_retime_reads_a_baseline_variant_from_its_label_or_record():
    assert pareto._variant_of({"model": "teacher (ONNX Runtime int8)"}) == "ONNX Runtime int8"
    assert pareto._variant_of({"model": "dense 2-layer student, lr 1e-3 (fp32)"}) == "fp32"
    assert pareto._variant_of({"model": "teacher (torch int8)"}) == "torch int8"
    assert pareto._variant_of({"model": "anything", "variant": "fp16"}) == "fp16"
    with pytest.raises(ValueError, match="names none of"):
        pareto._variant_of({"model": "teacher (bf16)"})


def test_pareto_retime_keeps_every_figure_but_the_latency(tmp_path, monkeypatch):
    # a packed model's record comes back with its perplexity, size and provenance as they were,
    # the old latency and fronts dropped (main() measures them anew), and its stand-in named
    trained = {"archive": "runs/long/bit_stage2/model.tar.gz", "steps": 2000}
    earlier = {"model": "BiT stage 2 (packed)", "bits": "W1A1", "kind": "packed export", "trained": trained,
               "perplexity": {"wikitext-2 test": 136.7, "ptb test": 592.2}, "file_bytes": 13811243,
               "runtime": "bitmaps_runtime", "latency_ms": 3.5, "latency_spread_ms": [3.3, 6.2],
               "front_latency": True, "front_size": True}
    stand_in = tmp_path / "stand_in"
    stand_in.mkdir()
    (stand_in / "packed.tar.gz").write_bytes(b"")
    built = []
    monkeypatch.setattr(pareto, "_packed_runner", lambda path: built.append(path) or (lambda ids, mask: None))
    args = argparse.Namespace(retime=_report(tmp_path, [earlier]), stand_in_folders=[f"runs/long/bit_stage2={stand_in}"])
    models, runners = pareto._retimed_models(args, tmp_path)
    assert built == [stand_in / "packed.tar.gz"] and list(runners) == ["BiT stage 2 (packed)"]
    kept = {k: v for k, v in earlier.items() if k not in ("runtime", "latency_ms", "latency_spread_ms", "front_latency", "front_size")}
    assert models == [{**kept, "latency_stand_in": str(stand_in / "packed.tar.gz")}]


def test_pareto_labels_name_the_learning_rate_where_recorded():
    # the real-budget runs differ in peak learning rate (long_runs.sh LR): two runs of one recipe
    # must not share a label, and a record from before the field still gets one
    assert pareto._run_label("BiT stage 1", {"steps": 2000, "learning_rate": 0.001}) == "BiT stage 1, 2000 steps, lr 0.001"
    assert pareto._run_label("BitNet b1.58", {"steps": 2000}) == "BitNet b1.58, 2000 steps"


def test_table_sensitivity_variants_round_only_what_they_name():
    from bitmaps_allennlp.quantization.int8 import quantize_int8_rows

    torch.manual_seed(0)
    word, position = torch.randn(20, 16), torch.randn(8, 16)
    int8 = lambda t: torch.mul(*quantize_int8_rows(t))
    tables = {name: table_sensitivity._variant_tables(name, word, position, mask_id=3) for name in table_sensitivity.VARIANTS}
    assert all(torch.equal(a, b) for a, b in zip(tables["fp32"], (word, position)))
    assert torch.equal(tables["int8_word"][0], int8(word)) and torch.equal(tables["int8_word"][1], position)
    assert torch.equal(tables["int8_both"][1], int8(position))
    changed = (tables["int8_mask_row"][0] != word).any(dim=1)
    assert changed.tolist() == [i == 3 for i in range(20)]
    assert torch.equal(tables["fp16_position"][1], position.half().float())
    noisy = table_sensitivity._variant_tables("noise1", word, position, mask_id=3)
    step = word.abs().amax(dim=1, keepdim=True) / 127
    assert 0 < (noisy[0] - word).abs().max() and ((noisy[0] - word).abs() <= step / 2 + 1e-7).all()
    assert torch.equal(noisy[1], table_sensitivity._variant_tables("noise1", word, position, 3)[1])


def test_long_runs_records_find_their_run_by_the_longest_label():
    assert long_results.record_run({"model": "BiT stage 2, 2000 steps"}) == "bit_stage2"
    assert long_results.record_run({"model": "BiT stage 2, int8 tables trained, 2000 steps"}) == "bit_stage2_int8_tables"
    assert long_results.record_run({"model": "teacher (fp32)"}) == "teacher"
    assert long_results.record_run({"model": "dense 2-layer student"}) is None


def test_demo_summary_takes_the_fastest_onnx_runtime_int8_build():
    samples = {"packed (bitmaps_runtime)": [8.0, 8.2], "torch fp32": [40.0], "ort_int8_channel": [13.6, 13.4],
               "ort_int8_tensor": [13.2, 13.0], "ort_int8_fused_channel": [14.5], "ort_int8_fused_tensor": [14.2],
               "ct2_int8": [13.8]}
    rows, builds, fastest = demo_summary.summary_rows(samples)
    assert fastest == "ort_int8_tensor" and builds["ort_int8_fused_tensor"] == 14.2
    assert list(rows) == ["packed (bitmaps_runtime)", "torch fp32", "ONNX Runtime int8", "CTranslate2 int8"]
    assert rows["ONNX Runtime int8"] == [13.2, 13.0] and rows["CTranslate2 int8"] == [13.8]
    # without the bench extra: no peer rows, no fastest build
    assert demo_summary.summary_rows({"packed (bitmaps_runtime)": [8.0], "torch fp32": [40.0]})[1:] == ({}, None)


def test_demo_summary_names_the_schemes_the_packed_file_holds():
    def packed(*schemes):
        return argparse.Namespace(linears={f"layer.{i}": {"scheme": name} for i, name in enumerate(schemes)})

    assert demo_summary._schemes_in_words(packed("w1a8", "w1a8")) == "1-bit weights and 8-bit activations (w1a8)"
    assert demo_summary._schemes_in_words(packed("w1a32")) == "1-bit weights and real activations (w1a32)"
    assert demo_summary._schemes_in_words(packed("w1a1", "w158a8")) == (  # in name order
        "ternary weights and 8-bit activations (w158a8); 1-bit weights and 1-bit activations (w1a1)")

"""The report scripts' own logic (the measurements they wrap are tested elsewhere): Pareto fronts,
collecting parity evaluations, the fp16 baseline's rounding."""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import baselines  # noqa: E402
import parity_results  # noqa: E402
import pareto  # noqa: E402


def test_pareto_front_keeps_only_undominated_points():
    # (latency or size, perplexity)
    points = [(10.0, 100.0), (20.0, 50.0), (15.0, 120.0), (20.0, 60.0), (5.0, 500.0), (10.0, 100.0)]
    assert pareto._pareto(points) == [True, True, False, False, True, True]


def test_parity_records_are_collected_from_the_table_folder(tmp_path):
    table = tmp_path / "table"
    table.mkdir()
    for name, value in {
        "bit_stage1__WikiText-2_test": 160.0,
        "bit_stage1_packed__WikiText-2_test": 160.5,
        "bit_stage1_packed_fp32_tables__WikiText-2_test": 160.0,
        "teacher__WikiText-2_test": 70.0,  # not a recipe: left out
        "bit_stage1__results": 1.0,  # not a split: left out
    }.items():
        (table / f"{name}.json").write_text(json.dumps({"perplexity": value, "accuracy": 0.2}))
    records = parity_results.collect(tmp_path)
    assert {(r["recipe"], r["model"], r["data"], r["perplexity"], r["bits"]) for r in records} == {
        ("bit_stage1", "source", "WikiText-2 test", 160.0, "W1A8"),
        ("bit_stage1", "packed, int8 tables (default)", "WikiText-2 test", 160.5, "W1A8"),
        ("bit_stage1", "packed, fp32 tables", "WikiText-2 test", 160.0, "W1A8"),
    }
    assert "(+0.31%)" in parity_results.table(records)


def test_fp16_baseline_rounds_every_float_tensor():
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 4)
    original = model.weight.detach().clone()
    baselines.fp16(model)
    assert torch.equal(model.weight, original.half().float())
    assert not torch.equal(model.weight, original)

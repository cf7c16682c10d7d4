"""bench/bench_train.py: the committed configs are timed as committed, and the report is written."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import needs_fashion_mnist

REPO = Path(__file__).resolve().parents[2]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_train", REPO / "bench" / "bench_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_config_keeps_the_committed_model_and_batch():
    bench = load_bench()
    import tomllib

    committed = tomllib.loads((REPO / "baselines" / "configs" / "flow.toml").read_text())
    config = bench.bench_config("flow", 7)
    assert config["model"] == committed["model"]
    assert config["train"]["batch_size"] == committed["train"]["batch_size"]
    assert config["train"]["steps"] == 7 and config["train"]["time_limit_s"] == 0.0
    assert config["data"]["eval_n"] <= 512


@pytest.mark.slow
@needs_fashion_mnist
def test_smoke_run_writes_a_report(tmp_path):
    bench = load_bench()
    out = tmp_path / "bench-train.md"
    assert bench.main(["--smoke", "--families", "dcgan", "--devices", "cpu", "--out", str(out)]) == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    (run,) = doc["runs"]
    assert run["family"] == "dcgan" and run["steps"] == 3 and run["steps_per_s"] > 0
    table = out.read_text().splitlines()
    header = next(line for line in table if line.startswith("| family"))
    assert header.count("|") == table[table.index(header) + 1].count("|")

"""genbench sweep: one reference extracted once, one JSON line per entry, reruns skip, concurrent writers."""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

import genbench
import genbench.evaluate as evaluate
from genbench.cli.app import main
from genbench.config import ExtractOptions, MetricOptions
from genbench.sweep import append_line, parse_step, read_entries, read_lines, run_sweep, summarize
from tests.conftest import make_images

GEN = textwrap.dedent('''
    import numpy as np

    def sample(n, seed, start, checkpoint):
        """A 'checkpoint' is a text file holding a brightness shift; images seeded by (seed, index)."""
        shift = float(open(checkpoint).read())
        out = []
        for i in range(start, start + n):
            rng = np.random.default_rng([seed, i])
            base = rng.uniform(0, 1, (4, 4, 3)).repeat(4, 0).repeat(4, 1)
            out.append(np.clip((base + shift) * 255, 0, 255).round().astype(np.uint8))
        return np.stack(out)
''')
SHIFTS = {1000: 0.3, 2000: 0.2, 3000: 0.1, 4000: 0.02, 5000: 0.06}


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gen.py").write_text(GEN)
    np.save(tmp_path / "ref.npy", make_images(600, seed=0, size=16))
    names = []
    for step, shift in SHIFTS.items():
        path = tmp_path / f"ckpt-{step:06d}.txt"
        path.write_text(str(shift))
        names.append(path.name)
    return names


def _count_extractions(monkeypatch) -> list[str]:
    roles: list[str] = []
    real = evaluate.extract_source

    def counting(source, extractor, options, role="generated", *args, **kwargs):
        roles.append(role)
        return real(source, extractor, options, role, *args, **kwargs)

    monkeypatch.setattr(evaluate, "extract_source", counting)
    return roles


XO = ExtractOptions(extractor="test-tiny", progress=False, num_samples=200)
MO = MetricOptions(seed=1, kid_subset_size=100, kid_subsets=10, bootstrap=20)


def test_parse_step():
    assert parse_step("runs/ckpt-001000.pt") == 1000
    assert parse_step("network-snapshot-000400/samples.npz") == 400
    assert parse_step("py:gen.py:sample@runs/step_25000.pt") == 25000
    assert parse_step("final.npz") is None


def test_five_checkpoints_extract_the_reference_once_and_a_rerun_does_nothing(checkpoints, tmp_path, monkeypatch):
    roles = _count_extractions(monkeypatch)
    entries = read_entries(checkpoints, generator="py:gen.py:sample")
    lines = run_sweep(entries, "ref.npy", tmp_path / "s.jsonl", extract_options=XO, metric_options=MO)
    assert roles.count("reference") == 1 and roles.count("generated") == 5
    assert [line["step"] for line in lines] == list(SHIFTS)
    for line in lines:
        assert {"fd_tiny", "is_tiny", "kid_tiny"} <= set(line["metrics"]) and line["n"] == 200
        assert len(line["metrics"]["fd_tiny"]["ci95"]) == 2 and line["seconds"] >= 0 and line["timestamp"]
        assert len(line["replicates"]["values"]) == 20
    # the numbers are those of five separate scores
    one = genbench.score(f"py:gen.py:sample@{checkpoints[2]}", "ref.npy", extractor="test-tiny", num_samples=200,
                         **{k: v for k, v in MO.to_dict().items()})
    # the same numbers (FD with the reference's factor reused may differ from a fresh one in the last bits)
    assert lines[2]["metrics"].keys() == one.metrics.keys()
    for metric, entry in one.metrics.items():
        for key, value in entry.items():
            if key == "diagnostics":  # FD's covariance diagnostics: the same numbers, one level down
                for side in ("generated", "reference"):
                    got = lines[2]["metrics"][metric][key][side]
                    assert got["rank"] == value[side]["rank"] and got["n"] == value[side]["n"]
                    assert got["min_eigenvalue"] == pytest.approx(value[side]["min_eigenvalue"], rel=1e-6,
                                                                  abs=1e-12)
                continue
            assert lines[2]["metrics"][metric][key] == pytest.approx(value, rel=1e-9), (metric, key)
    roles.clear()
    again = run_sweep(entries, "ref.npy", tmp_path / "s.jsonl", extract_options=XO, metric_options=MO)
    assert roles == [] and len(read_lines(tmp_path / "s.jsonl")) == 5 and again == lines
    # other settings are another sweep: nothing skipped
    other = run_sweep(entries[:2], "ref.npy", tmp_path / "s.jsonl", extract_options=XO,
                      metric_options=MetricOptions(seed=2, kid_subset_size=100, kid_subsets=10))
    assert len(other) == 2 and len(read_lines(tmp_path / "s.jsonl")) == 7
    summary = summarize(lines)
    assert summary.best is not None and summary.best["step"] == 4000 and summary.runner_up["step"] == 5000
    assert 0.0 <= summary.p_best_beats_runner_up <= 1.0 and summary.replicates == 20


def test_the_probability_that_the_best_beats_the_runner_up():
    def line(name, fd, values, is_value=1.0):
        return {"checkpoint": name, "step": None, "metrics": {"fd_x": {"value": fd}, "is_x": {"mean": is_value}},
                "replicates": {"metric": "fd_x", "values": values}}

    lines = [line("a", 2.0, [2.1, 1.9, 2.2, 2.0]), line("b", 1.0, [1.0, 2.0, 0.9, 3.0], 2.0),
             line("c", 1.5, [1.4, 1.6, 1.7, 1.2], 3.0)]
    s = summarize(lines)
    assert s.best["checkpoint"] == "b" and s.runner_up["checkpoint"] == "c"
    assert s.p_best_beats_runner_up == pytest.approx(0.5)  # b < c in replicates 0 and 2 of 4
    by_is = summarize(lines, "is_x")  # higher is better
    assert by_is.best["checkpoint"] == "c" and by_is.p_best_beats_runner_up is None and by_is.notes


def test_cli_sweep_with_a_list_file_table_plot_and_history(checkpoints, tmp_path, monkeypatch):
    roles = _count_extractions(monkeypatch)
    (tmp_path / "list.txt").write_text("# checkpoints\n" + "\n".join(checkpoints[2:]) + "\n")
    args = ["sweep", *checkpoints[:2], "--list", "list.txt", "--generator", "py:gen.py:sample", "--ref", "ref.npy",
            "--out", "s.jsonl", "--extractor", "test-tiny", "--num-samples", "200", "--kid-subset-size", "100",
            "--bootstrap", "10", "--history", "h.sqlite", "-q"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert roles.count("reference") == 1
    assert "P(best beats runner-up)" in done.output and "ckpt-004000.txt" in done.output
    assert (tmp_path / "s.fd_tiny.png").is_file() and (tmp_path / "s.kid_tiny.png").is_file()
    from genbench.results.history import History

    records = History(tmp_path / "h.sqlite").records()
    assert len(records) == 5 and {r.kind for r in records} == {"sweep"}
    roles.clear()
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0 and roles == [] and len(History(tmp_path / "h.sqlite").records()) == 5
    done = CliRunner().invoke(main, ["sweep", "--ref", "ref.npy", "--out", "s.jsonl"])
    assert done.exit_code == 2 and "no entries" in done.output


def _writer(path: str, tag: str, count: int) -> None:
    for i in range(count):
        append_line(path, {"writer": tag, "i": i, "payload": tag * 40_000})  # lines of ~40 KB, past any pipe buffer


def test_concurrent_appends_lose_no_line(tmp_path):
    path = str(tmp_path / "c.jsonl")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, tag, 150)) for tag in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    lines = read_lines(path)
    assert len(lines) == 300 and sorted((d["writer"], d["i"]) for d in lines) == sorted(
        (t, i) for t in "ab" for i in range(150))


def test_two_sweep_processes_on_one_file_lose_no_line(checkpoints, tmp_path):
    from pathlib import Path

    repo = Path(genbench.__file__).resolve().parents[1]  # so that tests.plugins.tiny imports in the children
    env = {**os.environ, "PYTHONPATH": str(repo), "GENBENCH_PLUGINS": "tests.plugins.tiny"}
    base = [sys.executable, "-m", "genbench", "sweep", *checkpoints, "--generator", "py:gen.py:sample", "--ref",
            "ref.npy", "--out", "both.jsonl", "--extractor", "test-tiny", "--num-samples", "100",
            "--kid-subset-size", "50", "--bootstrap", "0", "-q", "--no-cache"]
    procs = [subprocess.Popen([*base, "--seed", str(seed)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (0, 1)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    lines = read_lines(tmp_path / "both.jsonl")
    assert len(lines) == 10 and len({line["settings"] for line in lines}) == 2
    assert sorted(line["checkpoint"] for line in lines) == sorted(checkpoints * 2)
    json.loads((tmp_path / "both.jsonl").read_text().splitlines()[-1])

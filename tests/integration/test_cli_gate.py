"""The CI gate through the CLI: score --history, results, check (every exit code), report,
FD/IS-infinity, assert_quality, and the GitHub Actions script run locally."""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from genbench.cli.app import main
from genbench.metrics.infinity import fd_infinity
from tests.conftest import TinyExtractor, make_images

REPO = Path(__file__).resolve().parents[2]
TINY = ["--extractor", "test-tiny", "--quiet"]
SMALL = ["--kid-subset-size", "100", "--kid-subsets", "20", "--bootstrap", "100"]


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=env)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A reference set, two samples of the same distribution (a, b) and a clearly worse one (bad),
    and the baseline result of ``a`` with bootstrap intervals."""
    d = tmp_path_factory.mktemp("gate")
    np.save(d / "ref.npy", make_images(400, seed=0))
    np.save(d / "a.npy", make_images(200, seed=1))
    np.save(d / "b.npy", make_images(200, seed=2))
    np.save(d / "bad.npy", make_images(200, seed=3, shift=0.2))
    for name in ("a", "b", "bad"):
        res = run("score", d / f"{name}.npy", "--ref", d / "ref.npy", "--json", d / f"{name}.json", "--name", name, *SMALL, *TINY)
        assert res.exit_code == 0, res.output
    return d


def load(path):
    return json.loads(Path(path).read_text())


# ----------------------------------------------------------------------------- score + history + results


def test_score_records_provenance_and_appends_to_the_history(data, tmp_path):
    hist = tmp_path / "h.sqlite"
    out = tmp_path / "r.json"
    res = run("score", data / "a.npy", "--ref", data / "ref.npy", "--json", out, "--name", "dcgan", "--history", hist,
              "--project-dir", tmp_path, *SMALL, *TINY)
    assert res.exit_code == 0, res.output
    doc = load(out)
    prov = doc["provenance"]
    assert prov["name"] == "dcgan" and prov["git_commit"] is None  # tmp_path is not a git checkout
    assert prov["created_at"].endswith("Z") and prov["seed"] == 0 and prov["device"] == "cpu"
    assert prov["inputs"]["generated"]["n"] == 200 and prov["inputs"]["reference"]["n"] == 400
    # $GENBENCH_HISTORY works as --history; the commit of the current directory is recorded when it is a checkout.
    res = run("score", data / "b.npy", "--ref", data / "ref.npy", "--name", "vae", *SMALL, *TINY,
              env={"GENBENCH_HISTORY": str(hist)})
    assert res.exit_code == 0, res.output

    listed = run("results", "list", "--history", hist)
    assert listed.exit_code == 0 and "#1" in listed.stdout and "#2" in listed.stdout and "dcgan" in listed.stdout
    only = run("results", "list", "--history", hist, "--name", "vae")
    assert "#2" in only.stdout and "#1" not in only.stdout
    shown = json.loads(run("results", "show", "1", "--history", hist).stdout)
    assert shown["history_id"] == 1 and shown["metrics"] == doc["metrics"]
    rows = list(csv.DictReader(io.StringIO(run("results", "export", "--history", hist, "--format", "csv").stdout)))
    assert {(r["id"], r["metric"]) for r in rows} == {(i, m) for i in "12" for m in ("fd_tiny", "is_tiny", "kid_tiny")}
    fd_row = next(r for r in rows if r["id"] == "1" and r["metric"] == "fd_tiny")
    assert float(fd_row["value"]) == pytest.approx(doc["metrics"]["fd_tiny"]["value"]) and fd_row["name"] == "dcgan"
    exported = tmp_path / "all.json"
    assert run("results", "export", "--history", hist, "--format", "json", "-o", exported).exit_code == 0
    assert [d["history_id"] for d in load(exported)] == [1, 2]
    assert run("results", "export", "--history", hist, "-o", exported).exit_code == 2  # exists, no --overwrite
    res = run("results", "show", "7", "--history", hist)
    assert res.exit_code == 2 and "no record with id 7" in res.stderr
    res = run("results", "list", env={"GENBENCH_HISTORY": ""})
    assert res.exit_code == 2 and "GENBENCH_HISTORY" in res.stderr


# ----------------------------------------------------------------------------- check: exit codes


def test_check_passes_same_distribution_and_fails_a_real_regression(data):
    res = run("check", data / "b.json", "--baseline", data / "a.json", "--within-uncertainty")
    assert res.exit_code == 0, res.output
    assert "PASSED" in res.stdout and "within 95% CI" in res.stdout
    res = run("check", data / "bad.json", "--baseline", data / "a.json", "--within-uncertainty")
    assert res.exit_code == 1, res.output
    assert "REGRESSED" in res.stdout and "fd_tiny" in res.stdout and "lies entirely above" in res.stdout
    res = run("check", data / "b.json", "--baseline", data / "a.json", "--max-increase", "fd_tiny=0.0001")
    base, new = load(data / "a.json"), load(data / "b.json")
    rose = new["metrics"]["fd_tiny"]["value"] > base["metrics"]["fd_tiny"]["value"] + 0.0001
    assert res.exit_code == (1 if rose else 0)
    assert run("check", data / "bad.json", "--max", "fd_tiny=1000", "--min", "is_tiny=0").exit_code == 0
    assert run("check", data / "bad.json", "--max", "fd_tiny=0.01").exit_code == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--baseline", "missing.json", "--within-uncertainty"], "no such file"),
        (["--baseline", "{a}", "--max", "fid=30"], "not in the new result"),
        (["--baseline", "{a}"], "no rules"),
        (["--baseline", "{a}", "--max", "fd_tiny"], "METRIC=NUMBER"),
        (["--baseline", "{a}", "--max-increase", "is_tiny=0.1"], "--max-decrease"),
        (["--max-increase", "fd_tiny=0.1"], "needs a baseline"),
        (["--baseline", "3", "--max-increase", "fd_tiny=0.1"], "--history"),
        (["--baseline", "{tampered}", "--max-increase", "fd_tiny=0.1"], "weights_sha256"),
        (["--baseline", "{no_ci}", "--within-uncertainty"], "--bootstrap"),
        (["--baseline", "{a}", "--within-uncertainty", "--seed", "3"], "--seed apply to images scored here"),
        (["--baseline", "{a}", "--within-uncertainty", "--extractor", "fmnist-cnn"], "already a result JSON"),
    ],
)
def test_check_usage_errors_exit_2(data, tmp_path, args, message):
    tampered = load(data / "a.json")
    tampered["provenance"]["weights_sha256"] = "0" * 64
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    no_ci = load(data / "a.json")
    for entry in no_ci["metrics"].values():
        entry.pop("ci95", None)
    (tmp_path / "no_ci.json").write_text(json.dumps(no_ci))
    paths = {"a": data / "a.json", "tampered": tmp_path / "tampered.json", "no_ci": tmp_path / "no_ci.json"}
    args = [a.format(**paths) for a in args]
    new = tmp_path / "no_ci.json" if "{no_ci}" in str(args) else data / "b.json"
    res = run("check", new, *args, env={"GENBENCH_HISTORY": ""})
    assert res.exit_code == 2, res.output
    assert message in res.stderr


def test_incompatible_provenance_can_be_waived_explicitly(data, tmp_path):
    tampered = load(data / "a.json")
    tampered["provenance"]["weights_sha256"] = "0" * 64
    (tmp_path / "t.json").write_text(json.dumps(tampered))
    res = run("check", data / "b.json", "--baseline", tmp_path / "t.json", "--within-uncertainty",
              "--ignore-provenance", "weights_sha256")
    assert res.exit_code == 0, res.output


def test_check_scores_images_with_the_baselines_options_and_records(data, tmp_path):
    hist = tmp_path / "h.sqlite"
    saved = tmp_path / "new.json"
    # No --ref, --extractor, --metrics or --bootstrap: they follow the baseline.
    res = run("check", data / "b.npy", "--baseline", data / "a.json", "--within-uncertainty", "--record",
              "--history", hist, "--name", "pr-7", "--save-result", saved, "--json", "-", "--quiet")
    assert res.exit_code == 0, res.output
    verdicts = json.loads(res.stdout)
    assert verdicts["passed"] is True and verdicts["new"]["history_id"] == 1
    scored = load(saved)
    assert scored["metrics"] == load(data / "b.json")["metrics"]  # same options, same numbers
    assert scored["provenance"]["name"] == "pr-7" and scored["provenance"]["metric_options"]["bootstrap"] == 100
    res = run("check", data / "bad.npy", "--baseline", data / "a.json", "--within-uncertainty", "--quiet")
    assert res.exit_code == 1


def test_baseline_from_the_history_by_id_and_latest(data, tmp_path):
    hist = tmp_path / "h.sqlite"
    for name in ("a", "bad"):
        res = run("score", data / f"{name}.npy", "--ref", data / "ref.npy", "--name", f"main-{name}", "--history", hist,
                  *SMALL, *TINY)
        assert res.exit_code == 0
    env = {"GENBENCH_HISTORY": str(hist)}
    assert run("check", data / "b.json", "--baseline", "1", "--within-uncertainty", env=env).exit_code == 0
    # latest is the worse run, so b is no regression against it; latest:main-a is the good one.
    assert run("check", data / "bad.json", "--baseline", "latest", "--within-uncertainty", env=env).exit_code == 0
    assert run("check", data / "bad.json", "--baseline", "latest:main-a", "--within-uncertainty", env=env).exit_code == 1
    res = run("check", data / "b.json", "--baseline", "9", "--within-uncertainty", env=env)
    assert res.exit_code == 2 and "no record with id 9" in res.stderr


def test_markdown_and_json_outputs(data, tmp_path):
    res = run("check", data / "bad.json", "--baseline", data / "a.json", "--within-uncertainty", "--format", "markdown",
              "--json", tmp_path / "v.json")
    assert res.exit_code == 1
    md = res.stdout
    assert md.startswith("### ❌ genbench quality gate") and "| metric | baseline | new | delta | rule | verdict |" in md
    assert "**REGRESSED**" in md and "name `a`" in md and "name `bad`" in md
    verdicts = load(tmp_path / "v.json")
    assert verdicts["exit_code"] == 1 and "fd_tiny" in verdicts["regressions"]
    fd = next(v for v in verdicts["verdicts"] if v["metric"] == "fd_tiny")
    assert fd["old"] == load(data / "a.json")["metrics"]["fd_tiny"]["value"]
    assert fd["new"] == load(data / "bad.json")["metrics"]["fd_tiny"]["value"]


# ----------------------------------------------------------------------------- FD/IS-infinity


def test_fd_and_is_infinity_are_named_after_the_extractor_and_use_its_features(data):
    res = run("score", data / "a.npy", "--ref", data / "ref.npy", "--metrics", "fd-infinity,is-infinity", "--json", "-",
              "--seed", 3, *TINY)
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout)["metrics"]
    assert set(metrics) == {"fd_tiny_infinity", "is_tiny_infinity"}
    fit = metrics["fd_tiny_infinity"]
    assert len(fit["points"]) == 15 and fit["points"][0][0] == 20 and fit["points"][-1][0] == 200
    # The same fit from features computed here with the network and numpy's mean/cov of the reference.
    net = TinyExtractor()
    with torch.no_grad():
        fg = net(torch.from_numpy(np.load(data / "a.npy")).permute(0, 3, 1, 2).contiguous())["features"].double().numpy()
        fr = net(torch.from_numpy(np.load(data / "ref.npy")).permute(0, 3, 1, 2).contiguous())["features"].double().numpy()
    expected = fd_infinity(fg, fr.mean(0), np.cov(fr, rowvar=False), seed=3)
    assert fit["value"] == pytest.approx(expected.intercept, rel=1e-5)
    assert run("score", data / "a.npy", "--ref", data / "ref.npy", "--metrics", "fd_tiny_infinity", *TINY).exit_code == 0


# ----------------------------------------------------------------------------- report


def test_report_embeds_artifacts_and_escapes_text(data, tmp_path):
    grid = tmp_path / "grid.png"
    Image.fromarray(make_images(1, seed=0, size=32)[0]).save(grid)
    doc = load(data / "a.json")
    doc["artifacts"] = {"sample_grid": "grid.png", "memorization_gallery": {"path": str(grid), "caption": "nearest copies"}}
    doc["provenance"]["name"] = "<script>alert(1)</script>"
    result = tmp_path / "result.json"
    result.write_text(json.dumps(doc))
    out = tmp_path / "report"
    res = run("report", result, "-o", out)
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text()
    assert base64.b64encode(grid.read_bytes()).decode() in page and "nearest copies" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    fd = doc["metrics"]["fd_tiny"]
    assert "fd_tiny" in page and f"{fd['value']:.6g}" in page and f"{fd['ci95'][0]:.6g}" in page
    assert "weights_sha256" in page and doc["provenance"]["weights_sha256"] in page
    summary = (out / "summary.md").read_text()
    assert "| fd_tiny |" in summary and "![sample_grid](artifact-sample_grid.png)" in summary
    assert (out / "artifact-sample_grid.png").read_bytes() == grid.read_bytes()
    assert run("report", result, "-o", out).exit_code == 2  # exists, no --overwrite
    doc["artifacts"] = {"sample_grid": "nope.png"}
    result.write_text(json.dumps(doc))
    res = run("report", result, "-o", tmp_path / "r2")
    assert res.exit_code == 2 and "nope.png" in res.stderr and not (tmp_path / "r2" / "report.html").exists()


def test_report_plots_the_infinity_fit(data, tmp_path):
    res = run("score", data / "a.npy", "--ref", data / "ref.npy", "--metrics", "fd,fd-infinity", "--json", tmp_path / "r.json", *TINY)
    assert res.exit_code == 0
    assert run("report", tmp_path / "r.json", "-o", tmp_path / "out").exit_code == 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("<svg") == 1 and "fd_tiny_infinity: metric on N samples" in page


# ----------------------------------------------------------------------------- assert_quality


def test_assert_quality_passes_and_fails_readably(data):
    from genbench.testing import assert_quality

    samples = np.load(data / "bad.npy")
    ok = assert_quality(samples, str(data / "ref.npy"), max_fd=100.0, min_is=1.0, extractor="test-tiny")
    assert set(ok.metrics) == {"fd_tiny", "is_tiny"}
    with pytest.raises(AssertionError) as info:
        assert_quality(samples, str(data / "ref.npy"), max_fd=0.01, min_is=1.0, extractor="test-tiny")
    message = str(info.value)
    assert "fd_tiny" in message and "<= 0.01" in message and "REGRESSED" in message and "extractor test-tiny" in message
    assert "is_tiny" in message  # the bound that held is listed too


# ----------------------------------------------------------------------------- the GitHub Actions script


@pytest.mark.slow
def test_run_gate_script_locally(data, tmp_path):
    wrapper = tmp_path / "genbench_tiny.py"
    wrapper.write_text(
        f"import sys\nsys.path.insert(0, {str(REPO)!r})\nimport tests.conftest  # registers test-tiny\n"
        "from genbench.cli.app import main\nmain(prog_name='genbench')\n"
    )
    script = REPO / "examples" / "github-actions" / "run_gate.sh"
    env = {
        **os.environ,
        "GENBENCH": f"{sys.executable} {wrapper}",
        "GATE_SAMPLES": str(data / "bad.npy"),
        "GATE_REF": str(data / "ref.npy"),
        "GATE_BASELINE": str(data / "a.json"),
        "GATE_SCORE_ARGS": "--extractor test-tiny --quiet " + " ".join(SMALL),
        "GATE_RULES": "--within-uncertainty --max fd_tiny=100",
        "GATE_NAME": "pr-1",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    env.pop("GENBENCH_HISTORY", None)
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr
    out = tmp_path / "gate-out"
    assert "**REGRESSED**" in (out / "gate.md").read_text() and "REGRESSED" in proc.stdout
    assert "fd_tiny" in load(out / "gate.json")["regressions"]
    assert load(out / "result.json")["provenance"]["name"] == "pr-1"
    assert (out / "report" / "report.html").is_file() and (out / "report" / "summary.md").is_file()
    assert (tmp_path / "summary.md").read_text() == (out / "gate.md").read_text()
    # Same distribution: passes.
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, env={**env, "GATE_SAMPLES": str(data / "b.npy")},
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "✅" in (out / "gate.md").read_text()
    # A usage error exits 2 and leaves a comment that says why (no stale verdict, no stale result).
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, env={**env, "GATE_SAMPLES": str(tmp_path / "missing")},
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2
    comment = (out / "gate.md").read_text()
    assert "could not run: `genbench score` exited with 2" in comment and "missing" in comment
    assert not (out / "result.json").exists() and not (out / "gate.json").exists()

"""bench/bench_extract.py: the pytorch-fid and clean-fid processes use our weights and images, download
nothing, and the Markdown report holds the figures."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_extract", REPO / "bench" / "bench_extract.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Two 32x32 PNGs and seeded random weights (calibrated on a small image, to be quick)."""
    from genbench.features.inception import random_state_dict

    bench = load_bench()
    root = tmp_path_factory.mktemp("bench")
    bench._make_images(root / "images", 2, 32, seed=4)
    torch.save(random_state_dict(bench.WEIGHTS_SEED, calibration_size=75), root / "random-inception.pth")
    return root


@pytest.fixture
def no_downloads(tmp_path, monkeypatch):
    """Any download through torch.hub fails, and the torch hub folder is a fresh one to check afterwards."""
    def refuse(*args, **kwargs):
        raise AssertionError("the benchmark tried to download the real weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    yield tmp_path / "torch-home"
    assert not (tmp_path / "torch-home").exists()


def _ours(workdir, preprocessing: str) -> np.ndarray:
    from PIL import Image

    from genbench.features.inception import build_inception

    ext = build_inception(weights=workdir / "random-inception.pth", preprocessing=preprocessing, backend="torch",
                          allow_unverified=True)
    files = sorted((workdir / "images").glob("*.png"))
    batch = np.stack([np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1) for f in files])
    return ext(torch.from_numpy(batch))["features"].double().numpy()


@pytest.mark.slow
@pytest.mark.reference
def test_pytorch_fid_and_clean_fid_processes_use_our_weights(workdir, no_downloads, tmp_path, capsys):
    pytest.importorskip("pytorch_fid")
    pytest.importorskip("cleanfid")
    bench = load_bench()
    common = ["--images", str(workdir / "images"), "--weights", str(workdir / "random-inception.pth"),
              "--batch-size", "2", "--loader-workers", "0"]
    assert bench.main(["_pytorch_fid", *common, "--out", str(tmp_path / "pf.npz")]) == 0
    assert bench.main(["_clean_fid", *common, "--out", str(tmp_path / "cf.npz")]) == 0
    assert '"num_workers": 0' in capsys.readouterr().err

    # pytorch-fid resizes with torch bilinear inside its network: our torch-bilinear features, averaged.
    mu = np.load(tmp_path / "pf.npz")["mu"]
    expected = _ours(workdir, "torch-bilinear").mean(axis=0)
    assert np.abs(mu - expected).max() <= 1e-4 * np.abs(expected).max()
    # clean-fid resizes with PIL bicubic, then its pytorch-fid network maps x / 255 to [-1, 1]
    # (ours: (x - 128) / 128, like its TorchScript model), so only close.
    feats = np.load(tmp_path / "cf.npz")["features"]
    expected = _ours(workdir, "pil-bicubic")
    assert feats.shape == (2, 2048)
    assert np.abs(feats - expected).max() <= 2e-2 * np.abs(expected).max()


def test_weights_from_file_patches_and_restores(workdir):
    bench = load_bench()

    class Module:
        @staticmethod
        def load_state_dict_from_url(url, **kwargs):
            raise AssertionError("download")

    original = Module.load_state_dict_from_url
    with bench.weights_from_file(Module, workdir / "random-inception.pth") as asked:
        state = Module.load_state_dict_from_url("https://example.invalid/pt_inception.pth", progress=True)
    assert asked == ["https://example.invalid/pt_inception.pth"]
    assert "fc.weight" in state and state["fc.weight"].shape == (1008, 2048)
    assert Module.load_state_dict_from_url is original


def test_report_has_device_versions_command_and_ratios(workdir, tmp_path):
    bench = load_bench()
    weights = workdir / "random-inception.pth"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "random-inception.pth").symlink_to(weights)
    report = tmp_path / "bench.md"
    assert bench.main(["--counts", "--steady-n", "0", "--workdir", str(run_dir), "--report", str(report)]) == 0
    text = report.read_text()
    for needle in ("Device:", "logical CPUs", "torch-fidelity 0.", "pytorch-fid 0.", "clean-fid 0.", "Command: `",
                   "--steady-n 0", "Date: 20", "## What is measured"):
        assert needle in text, needle

    results = {
        "date": "2025-01-01T00:00:00+00:00", "command": "python bench/bench_extract.py", "cwd": "/x",
        "environment": {"cpu_model": "Test CPU", "cpu_count": 2, "available_cpus": 2, "torch_threads": 2,
                        "platform": "Linux", "versions": {"python": "3.11", "clean-fid": None}},
        "load_avg_start": (1.0, 1.0, 1.0), "load_avg_end": (2.0, 2.0, 2.0), "image_size": 32, "batch_size": 32,
        "weights_sha256": "ab" * 32, "repeats": 3, "steady_n": 96, "loader_workers": {"pytorch-fid": 2},
        "whole_process_n64": {
            "genbench[auto]": {"median_s": 4.0, "runs_s": [4.0, 4.1, 3.9], "phases": '{"import_s": 1.0}'},
            "pytorch-fid": {"median_s": 10.0, "runs_s": [10.0, 9.0, 11.0], "phases": ""},
        },
        "steady_state_img_per_s": {"onnxruntime": 20.0, "torch": 15.0, "pytorch-fid": 10.0},
    }
    text = bench.render_report(results)
    assert "| pytorch-fid | 10.00 | 10.00, 9.00, 11.00 | 6.4 | 2.50 |" in text
    assert "| genbench[auto] | 4.00 | 4.00, 4.10, 3.90 | 16.0 | - |" in text
    assert "| pytorch-fid | 10.0 | 2.00 | 1.50 |" in text
    assert "not installed: clean-fid" in text and "Test CPU, 2 logical CPUs" in text

"""Verbs and options that no other test drives through the CLI, each checked for what it changes.

``genbench demo`` (``--samples``, ``--seed``, ``--json``); ``probe conditional --labels --max-reference``;
``probe sensitivity --compare-preprocessing``; ``baselines sample --labels``; ``--precision bf16|tf32``; and
``--data-dir`` / ``--weights-sha256`` on score, extract and check. Small inputs throughout; no Fashion-MNIST files
are read (``--data-dir`` points at IDX files written here, and fashion-mnist:train is a bundled statistics file).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageFilter

from genbench.cli.app import main
from tests.conftest import TinyExtractor, make_images
from tests.unit.test_fid import nuclear_norm_fd

TINY = ["--extractor", "test-tiny", "--quiet", "--no-cache"]


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=env)


def ok(*args, env=None) -> dict | str:
    """Run; exit 0 required; the parsed JSON on stdout when there is one, else the text."""
    res = run(*args, env=env)
    assert res.exit_code == 0, res.output
    try:
        return json.loads(res.stdout)
    except json.JSONDecodeError:
        return res.stdout


def tiny_features(images_nhwc: np.ndarray, extractor=None) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))
        return (extractor or TinyExtractor())(x)["features"].numpy().astype(np.float64)


def subsample(n: int, max_n: int, seed: int, stream: int) -> np.ndarray:
    """The probes' documented seeded subsample: sorted default_rng([seed, stream]).choice(n, max_n, replace=False)."""
    return np.sort(np.random.default_rng([seed, stream]).choice(n, max_n, replace=False))


# ----------------------------------------------------------------------------- demo


@pytest.fixture(scope="module")
def demo_samples(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "real.npy"
    np.save(path, make_images(60, seed=7, size=28))
    return path


def _demo(samples: Path, *extra) -> dict[str, dict]:
    doc = ok("demo", "--samples", samples, "--json", "-", "-q", *extra)
    return {row["name"]: row["metrics"] for row in doc}


def test_demo_rows_are_the_scores_of_the_samples_and_their_degraded_copies(demo_samples, tmp_path):
    rows = _demo(demo_samples)
    assert list(rows) == ["test split", "blur sigma=1", "blur sigma=2", "noise std=16", "noise std=48"]
    plain = ok("score", demo_samples, "--ref", "fashion-mnist:train", "--json", "-", "-q", "--no-cache")
    assert rows["test split"]["fd_fmnist"]["value"] == pytest.approx(plain["metrics"]["fd_fmnist"]["value"], rel=1e-9)
    # The blur row is the score of the images blurred here with PIL (sigma 2), independently of the transforms.
    images = np.load(demo_samples)
    blurred = np.stack([np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius=2.0))) for im in images])
    np.save(tmp_path / "blurred.npy", blurred)
    by_hand = ok("score", tmp_path / "blurred.npy", "--ref", "fashion-mnist:train", "--json", "-", "-q", "--no-cache")
    assert rows["blur sigma=2"]["fd_fmnist"]["value"] == pytest.approx(by_hand["metrics"]["fd_fmnist"]["value"],
                                                                      rel=1e-9)
    fds = [rows[name]["fd_fmnist"]["value"] for name in ("test split", "blur sigma=1", "blur sigma=2")]
    assert fds[0] < fds[1] < fds[2]
    assert rows["noise std=16"]["fd_fmnist"]["value"] < rows["noise std=48"]["fd_fmnist"]["value"]


def test_demo_seed_draws_other_noise_and_leaves_the_rest(demo_samples):
    first, again, other = _demo(demo_samples, "--seed", 0), _demo(demo_samples, "--seed", 0), \
        _demo(demo_samples, "--seed", 1)
    assert first == again
    for name in ("test split", "blur sigma=2"):
        assert other[name]["fd_fmnist"] == first[name]["fd_fmnist"]
    for name in ("noise std=16", "noise std=48"):
        assert other[name]["fd_fmnist"]["value"] != first[name]["fd_fmnist"]["value"]


def test_demo_table_and_json_file(demo_samples, tmp_path):
    text = ok("demo", "--samples", demo_samples, "-q")
    assert "blur sigma=2" in text and "fd_fmnist" in text and "seconds" in text
    out = tmp_path / "demo.json"
    assert "blur sigma=2" in ok("demo", "--samples", demo_samples, "--json", out, "-q")  # the table still prints
    assert [row["name"] for row in json.loads(out.read_text())][0] == "test split"
    again = run("demo", "--samples", demo_samples, "--json", out, "-q")
    assert again.exit_code == 2 and "--overwrite" in again.stderr


# ----------------------------------------------------------------------------- probe conditional


def test_probe_conditional_with_a_labels_file_and_max_reference(tmp_path):
    from tests.unit.test_probes_modes import stacked_from_classes  # registers the test-brightness10 classifier

    rng = np.random.default_rng(2)
    intended = np.repeat(np.arange(10), 12)
    shown = np.where(intended == 3, 4, intended)  # the class-3 samples look like class 4
    gen = stacked_from_classes(np.stack([shown] * 3, axis=1)) + rng.integers(0, 5, size=(120, 8, 8, 3)).astype(np.uint8)
    ref_labels = np.repeat(np.arange(10), 20)
    ref = stacked_from_classes(np.stack([ref_labels] * 3, axis=1)) + rng.integers(0, 5, size=(200, 8, 8, 3)).astype(
        np.uint8)
    np.save(tmp_path / "gen.npy", gen)
    np.save(tmp_path / "intended.npy", intended)
    np.savez(tmp_path / "ref.npz", images=ref, labels=ref_labels)
    doc = ok("probe", "conditional", tmp_path / "gen.npy", "--labels", tmp_path / "intended.npy", "--ref",
             tmp_path / "ref.npz", "--max-reference", 150, "--seed", 5, "--extractor", "test-brightness10", "-q",
             "--no-cache", "--json", "-")
    assert doc["accuracy"] == pytest.approx(0.9)
    per_class = {row["class"]: row for row in doc["per_class"]}
    assert per_class[3]["accuracy"] == 0.0 and per_class[4]["accuracy"] == 1.0
    keep = subsample(200, 150, seed=5, stream=1)
    assert doc["provenance"]["inputs"]["reference"]["n"] == 150
    assert sum(row["n_reference"] for row in doc["per_class"]) == 150
    fg, fr = tiny_features(gen), tiny_features(ref[keep])
    for c in (0, 3):
        assert per_class[c]["n_reference"] == int((ref_labels[keep] == c).sum())
        expected = nuclear_norm_fd(fg[intended == c], fr[ref_labels[keep] == c])
        assert per_class[c]["fd_tiny"] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    np.save(tmp_path / "short.npy", intended[:50])
    short = run("probe", "conditional", tmp_path / "gen.npy", "--labels", tmp_path / "short.npy", "--ref",
                tmp_path / "ref.npz", "--extractor", "test-brightness10", "-q", "--no-cache")
    assert short.exit_code == 2 and "120" in short.stderr


# ----------------------------------------------------------------------------- probe sensitivity


def test_probe_sensitivity_compare_preprocessing_through_the_cli(tmp_path):
    from tests.unit.test_probes_sensitivity import TinyResize  # registers test-tiny-resize

    samples, reference = make_images(80, seed=1), make_images(120, seed=0)
    np.save(tmp_path / "s.npy", samples)
    np.save(tmp_path / "r.npy", reference)
    doc = ok("probe", "sensitivity", "--samples", tmp_path / "s.npy", "--ref", tmp_path / "r.npy", "--transforms",
             "none", "--compare-preprocessing", "avgpool8,nearest8", "--metrics", "fd", "--extractor",
             "test-tiny-resize", "-q", "--no-cache", "--json", "-")
    rows = {row["preprocessing"]: row for row in doc["preprocessing"]}
    assert list(rows) == ["avgpool8", "nearest8"]
    near_s, near_r = tiny_features(samples, TinyResize("nearest8")), tiny_features(reference, TinyResize("nearest8"))
    avg_s, avg_r = tiny_features(samples), tiny_features(reference)
    assert rows["avgpool8"]["fd_tiny_to_reference"] == pytest.approx(nuclear_norm_fd(avg_s, avg_r), rel=1e-4)
    assert rows["nearest8"]["fd_tiny_to_reference"] == pytest.approx(nuclear_norm_fd(near_s, near_r), rel=1e-4)
    assert rows["nearest8"]["fd_tiny_same_images_vs_avgpool8"] == pytest.approx(nuclear_norm_fd(near_s, avg_s),
                                                                                  rel=1e-4)
    bad = run("probe", "sensitivity", "--samples", tmp_path / "s.npy", "--ref", tmp_path / "r.npy", "--transforms",
              "none", "--compare-preprocessing", "avgpool8,bogus", "--extractor", "test-tiny-resize", "-q")
    assert bad.exit_code == 2 and "bogus" in bad.stderr


# ----------------------------------------------------------------------------- baselines sample --labels


def test_baselines_sample_labels_are_stored_and_drawn(tmp_path):
    out = tmp_path / "c.npz"
    ok("baselines", "sample", "cgan", "-n", 20, "--labels", "0,3,7,9", "--seed", 0, "-o", out, "-q")
    with np.load(out, allow_pickle=False) as data:
        images, labels = data["images"], data["labels"]
    assert images.shape == (20, 28, 28, 1) and labels.tolist() == [0, 3, 7, 9] * 5
    # The samples are of the classes asked for: the bundled Fashion-MNIST classifier agrees on most of them.
    from genbench.api import extract

    predicted = extract(str(out), extractor="fmnist-cnn", cache=False).logits.argmax(1)
    assert (predicted == labels).mean() >= 0.8
    ok("baselines", "sample", "cgan", "-n", 20, "--labels", "5", "--seed", 0, "-o", tmp_path / "five.npz", "-q")
    with np.load(tmp_path / "five.npz", allow_pickle=False) as data:
        assert set(data["labels"].tolist()) == {5} and not np.array_equal(data["images"], images)
    plain = run("baselines", "sample", "dcgan", "-n", 10, "--labels", "0,3", "-o", tmp_path / "d.npz", "-q")
    assert plain.exit_code == 2 and "not class-conditional" in plain.stderr
    bad = run("baselines", "sample", "cgan", "-n", 10, "--labels", "a,b", "-o", tmp_path / "e.npz", "-q")
    assert bad.exit_code == 2 and "--labels" in bad.stderr


# ----------------------------------------------------------------------------- --precision


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair")
    np.save(d / "g.npy", make_images(100, seed=1, shift=0.1))
    np.save(d / "r.npy", make_images(120, seed=0))
    return d


def test_precision_bf16_end_to_end(pair, tmp_path):
    base = ("score", pair / "g.npy", "--ref", pair / "r.npy", "--metrics", "fd", "--json", "-", *TINY)
    f32, bf16 = ok(*base), ok(*base, "--precision", "bf16")
    exact, rounded = f32["metrics"]["fd_tiny"]["value"], bf16["metrics"]["fd_tiny"]["value"]
    assert bf16["provenance"]["precision"] == "bf16" and f32["provenance"]["precision"] == "float32"
    check = bf16["provenance"]["precision_check"]
    assert check["subset_n"] == 100 and check["fd_subset_bf16"] == pytest.approx(rounded, rel=1e-12)
    deviation = abs(check["fd_subset_bf16"] - check["fd_subset_float32"]) / check["fd_subset_float32"]
    assert check["fd_rel_dev"] == pytest.approx(deviation, rel=1e-9) and deviation > 0
    assert rounded != exact and abs(rounded - exact) / exact < 0.02  # bf16 arithmetic happened, and stayed close
    assert 0 < check["feature_rel_rms_dev"] < 0.01
    ok("extract", pair / "r.npy", "-o", tmp_path / "r16.npz", "--precision", "bf16", *TINY)
    with np.load(tmp_path / "r16.npz", allow_pickle=False) as data:
        assert json.loads(str(data["meta"]))["precision"] == "bf16"
    ok("extract", pair / "r.npy", "-o", tmp_path / "r32.npz", *TINY)
    mixed = run("score", pair / "g.npy", "--ref", tmp_path / "r32.npz", "--metrics", "fd", "--precision", "bf16", *TINY)
    assert mixed.exit_code == 2 and "precision='float32'" in mixed.stderr and "bf16" in mixed.stderr


def test_precision_tf32_needs_cuda_and_runs_there(pair):
    args = ("score", pair / "g.npy", "--ref", pair / "r.npy", "--metrics", "fd", "--precision", "tf32", "--json", "-",
            *TINY)
    if not torch.cuda.is_available():
        res = run(*args)
        assert res.exit_code == 2 and "tf32" in res.stderr and "CUDA" in res.stderr
        pytest.skip("no CUDA device: tf32 refused on the CPU (checked); the CUDA run needs a GPU")
    doc = ok(*args, "--device", "cuda")
    f32 = ok("score", pair / "g.npy", "--ref", pair / "r.npy", "--metrics", "fd", "--json", "-", *TINY)
    assert doc["provenance"]["precision"] == "tf32"
    assert doc["metrics"]["fd_tiny"]["value"] == pytest.approx(f32["metrics"]["fd_tiny"]["value"], rel=0.02)


# ----------------------------------------------------------------------------- --data-dir


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def data_dir(tmp_path):
    """A Fashion-MNIST folder of 12 test images (IDX files), unlike the 10,000 of any installed copy."""
    from genbench.sources import datasets

    folder = tmp_path / "fmnist"
    folder.mkdir()
    images = make_images(12, seed=3, size=28)[..., 0]
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(12) % 10)
    datasets.clear_cache()
    yield folder, images
    datasets.clear_cache()


def test_data_dir_on_score_extract_and_check(data_dir, pair, tmp_path, monkeypatch):
    folder, images = data_dir
    monkeypatch.delenv("GENBENCH_DATA", raising=False)
    args = ("--data-dir", folder, *TINY)
    scored = ok("score", "fashion-mnist:test", "--ref", pair / "r.npy", "--metrics", "fd", "--json", "-", *args)
    assert scored["provenance"]["inputs"]["generated"]["n"] == 12
    np.save(tmp_path / "same.npy", np.repeat(images[..., None], 3, axis=-1))
    direct = ok("score", tmp_path / "same.npy", "--ref", pair / "r.npy", "--metrics", "fd", "--json", "-", *TINY)
    assert scored["metrics"]["fd_tiny"]["value"] == pytest.approx(direct["metrics"]["fd_tiny"]["value"], rel=1e-9)
    ok("extract", "fashion-mnist:test", "-o", tmp_path / "f.npz", *args)
    with np.load(tmp_path / "f.npz", allow_pickle=False) as data:
        np.testing.assert_allclose(data["features"], tiny_features(np.repeat(images[..., None], 3, axis=-1)),
                                   rtol=1e-5, atol=1e-6)
    baseline = tmp_path / "base.json"
    (tmp_path / "base.json").write_text(json.dumps(direct))
    checked = ok("check", "fashion-mnist:test", "--baseline", baseline, "--max-increase", "fd_tiny=0.001",
                 "--save-result", tmp_path / "new.json", "--json", "-", *args)
    assert checked["passed"] is True and checked["regressions"] == []  # the same 12 images as the baseline
    new = json.loads((tmp_path / "new.json").read_text())
    assert new["provenance"]["inputs"]["generated"]["n"] == 12
    assert new["metrics"]["fd_tiny"]["value"] == pytest.approx(direct["metrics"]["fd_tiny"]["value"], rel=1e-9)


# ----------------------------------------------------------------------------- --weights-sha256


@pytest.fixture(scope="module")
def dinov2_weights(tmp_path_factory) -> tuple[str, str]:
    from genbench.features.dinov2 import random_state_dict

    path = tmp_path_factory.mktemp("w") / "dinov2_vits14_random.pth"
    torch.save(random_state_dict("dinov2-vit-s14", 0), path)
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_weights_sha256_on_score_extract_and_check(dinov2_weights, tmp_path, monkeypatch):
    for var in ("GENBENCH_DINOV2_WEIGHTS", "GENBENCH_DINOV2_WEIGHTS_SHA256"):
        monkeypatch.delenv(var, raising=False)
    path, sha = dinov2_weights
    np.save(tmp_path / "g.npy", make_images(6, seed=1, size=28))
    np.save(tmp_path / "r.npy", make_images(8, seed=2, size=28))
    net = ("--extractor", "dinov2-vit-s14", "--weights", path, "-q", "--no-cache", "--batch-size", 8)
    wrong = "0" * 64
    for verb, target in (("score", ("--ref", tmp_path / "r.npy", "--metrics", "fd", "--json", tmp_path / "s.json")),
                         ("extract", ("-o", tmp_path / "f.npz"))):
        bad = run(verb, tmp_path / "g.npy", *target, *net, "--weights-sha256", wrong)
        assert bad.exit_code == 2 and f"expected {wrong} (pinned by --weights-sha256)" in bad.stderr, bad.output
        ok(verb, tmp_path / "g.npy", *target, *net, "--weights-sha256", sha.upper())
    assert json.loads((tmp_path / "s.json").read_text())["provenance"]["weights_sha256"] == sha
    with np.load(tmp_path / "f.npz", allow_pickle=False) as data:
        assert json.loads(str(data["meta"]))["weights_sha256"] == sha
    gate = ("check", tmp_path / "g.npy", "--baseline", tmp_path / "s.json", "--max-increase", "fd_dinov2=1", *net)
    refused = run(*gate, "--weights-sha256", wrong)
    assert refused.exit_code == 2 and "pinned by --weights-sha256" in refused.stderr
    assert run(*gate, "--weights-sha256", sha).exit_code == 0
    not_for_tiny = run("score", tmp_path / "g.npy", "--ref", tmp_path / "r.npy", "--weights-sha256", sha, *TINY)
    assert not_for_tiny.exit_code == 2 and "--weights-sha256 does not apply" in not_for_tiny.stderr

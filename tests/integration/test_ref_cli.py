"""`genbench ref`: build, list, show, verify (with tampering), import, and resolution by score."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from click.testing import CliRunner

from genbench.cli.app import main
from tests.conftest import make_images


def _write_idx(path, array: np.ndarray, code: int = 0x08) -> None:
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def stores(tmp_path, monkeypatch):
    """A tiny Fashion-MNIST in IDX format and empty bundled/user stores."""
    data = tmp_path / "data"
    data.mkdir()
    for split, n, seed in (("train", 80, 0), ("t10k", 60, 1)):
        images = make_images(n, seed=seed, size=28)[..., 0]
        _write_idx(data / f"{split}-images-idx3-ubyte.gz", images)
        _write_idx(data / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    monkeypatch.setenv("GENBENCH_DATA", str(data))
    monkeypatch.setenv("GENBENCH_REFERENCE_STATS", str(tmp_path / "bundled"))
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    from genbench.sources import datasets

    datasets.clear_cache()
    return tmp_path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_build_list_show_verify_and_score_by_id(stores):
    res = run("ref", "build", "fashion-mnist:train", "--extractor", "test-tiny", "--bundled", "-q")
    assert res.exit_code == 0, res.stderr
    manifest = json.loads((stores / "bundled" / "manifest.json").read_text())
    entry = manifest["entries"][0]
    assert entry["id"] == "fashion-mnist-train_test-tiny" and entry["n"] == 80 and entry["extractor"] == "test-tiny"
    assert "genbench ref build fashion-mnist:train" in entry["command"]
    assert "fashion-mnist-train_test-tiny" in run("ref", "list").stdout
    assert json.loads(run("ref", "show", "fashion-mnist:train").stdout)["sha256"] == entry["sha256"]
    assert run("ref", "verify", "--rebuild", "-q").exit_code == 0

    # Scoring against the data set spec resolves to the statistics and follows their extractor.
    doc = json.loads(run("score", "fashion-mnist:test", "--ref", "fashion-mnist:train", "--json", "-", "-q").stdout)
    assert set(doc["metrics"]) == {"fd_tiny", "is_tiny"}
    assert doc["provenance"]["inputs"]["reference"]["reference_id"] == "fashion-mnist-train_test-tiny"
    direct = json.loads(
        run("score", "fashion-mnist:test", "--ref", "fashion-mnist:train", "--extractor", "test-tiny",
            "--metrics", "fd", "--json", "-", "-q").stdout
    )
    assert direct["metrics"]["fd_tiny"]["value"] == pytest.approx(doc["metrics"]["fd_tiny"]["value"], rel=1e-6)


def test_tampered_truncated_or_missing_statistics_are_refused(stores):
    run("ref", "build", "fashion-mnist:train", "--extractor", "test-tiny", "--bundled", "-q")
    entry = json.loads((stores / "bundled" / "manifest.json").read_text())["entries"][0]
    path = stores / "bundled" / entry["file"]
    original = path.read_bytes()
    path.write_bytes(original[:-100])
    res = run("score", "fashion-mnist:test", "--ref", "fashion-mnist:train", "-q")
    assert res.exit_code == 2 and "sha256" in res.stderr
    assert run("ref", "verify").exit_code == 2
    path.unlink()
    res = run("score", "fashion-mnist:test", "--ref", "fashion-mnist:train", "-q")
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_unknown_reference_lists_known_ones(stores):
    run("ref", "build", "fashion-mnist:train", "--extractor", "test-tiny", "--bundled", "-q")
    res = run("ref", "show", "imagenet:val")
    assert res.exit_code == 2 and "fashion-mnist-train_test-tiny" in res.stderr


def test_import_records_declared_provenance_and_refuses_other_settings(stores, tmp_path):
    stats = tmp_path / "other_tool.npz"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 16))
    np.savez(stats, mu=x.mean(0), sigma=np.cov(x, rowvar=False))
    res = run("ref", "import", stats, "--id", "mine", "--dataset", "fashion-mnist", "--split", "train",
              "--extractor", "test-tiny", "--weights-sha256", "abc", "--layer", "proj", "--preprocessing", "avgpool8",
              "--n", 50)
    assert res.exit_code == 0, res.stderr
    shown = json.loads(run("ref", "show", "mine").stdout)
    assert shown["n"] == 50 and shown["weights_sha256"] == "abc"
    # The declared weights hash differs from the extractor's: scoring against it is refused.
    res = run("score", "fashion-mnist:test", "--ref", "mine", "-q")
    assert res.exit_code == 2 and "weights_sha256" in res.stderr


def test_build_refuses_to_replace_an_entry_without_overwrite(stores):
    assert run("ref", "build", "fashion-mnist:train", "--extractor", "test-tiny", "-q").exit_code == 0
    res = run("ref", "build", "fashion-mnist:train", "--extractor", "test-tiny", "-q")
    assert res.exit_code == 2 and "--overwrite" in res.stderr


def test_an_explicit_policy_is_part_of_the_id_and_picks_the_statistics(stores):
    assert run("ref", "build", "fashion-mnist:test", "--extractor", "test-tiny", "-q").exit_code == 0
    res = run("ref", "build", "fashion-mnist:test", "--extractor", "test-tiny", "--preprocessing", "avgpool8", "-q")
    assert res.exit_code == 0, res.output
    listed = run("ref", "list", "--json", "-")
    ids = {e["id"] for e in json.loads(listed.output)}
    assert {"fashion-mnist-test_test-tiny", "fashion-mnist-test_test-tiny_avgpool8"} <= ids
    from genbench.stats.lookup import lookup_reference

    assert lookup_reference("fashion-mnist:test", "test-tiny", "avgpool8").preprocessing == "avgpool8"

"""Published references by id: a fresh store fetches every format from a mirror on 127.0.0.1 and records the
catalogue's provenance; every download fault exits 2, names its cause, leaves nothing and a rerun works.

The served files are synthetic, generated here in tmp folders in the exact layout of the real ones (same keys,
shapes, dtypes, container); nothing is downloaded from the internet and no real name is given fake content
outside the test's own tmp folders.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from genbench.cli.app import main
from genbench.features.weights import INCEPTION_V3_WEIGHTS
from genbench.stats.catalogue import load_catalogue
from tests.serving import Server

REPO = Path(__file__).resolve().parents[2]
CAT = load_catalogue()


def gaussian(d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A mean [d] and a positive definite covariance [d, d], float64, seeded."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, 48))
    return rng.standard_normal(d), a @ a.T / 47 + 0.05 * np.eye(d)


def npz_bytes(compressed: bool = False, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def made_files() -> dict[str, tuple[bytes, dict]]:
    """Catalogue id -> (synthetic bytes in that file's layout, the arrays they hold)."""
    out: dict[str, tuple[bytes, dict]] = {}
    mu, sigma = gaussian(2048, 1)
    out["clean-fid/cifar10_legacy_tensorflow_train_32"] = (npz_bytes(True, mu=mu, sigma=sigma), {"mu": mu, "sigma": sigma})
    mu, sigma = gaussian(2048, 2)
    out["clean-fid/cifar10_clean_train_32"] = (npz_bytes(True, mu=mu, sigma=sigma), {"mu": mu, "sigma": sigma})
    feats = np.random.default_rng(3).standard_normal((60, 2048)).astype(np.float32)
    out["clean-fid/afhq_cat_clean_train_512_kid"] = (npz_bytes(True, feats=feats), {"feats": feats})
    mu, sigma = gaussian(2048, 4)
    out["ttur/fid_stats_cifar10_train"] = (npz_bytes(True, mu=mu, sigma=sigma), {"mu": mu, "sigma": sigma})
    mu, sigma = gaussian(2048, 5)
    mu_s, sigma_s = gaussian(2023, 6)
    images = np.random.default_rng(7).integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    out["adm/VIRTUAL_imagenet64_labeled"] = (
        npz_bytes(arr_0=images, mu=mu, sigma=sigma, mu_s=mu_s, sigma_s=sigma_s),
        {"mu": mu, "sigma": sigma, "mu_s": mu_s, "sigma_s": sigma_s, "arr_0": images})
    mu, sigma = gaussian(2048, 8)
    out["edm/cifar10-32x32"] = (npz_bytes(mu=mu, sigma=sigma), {"mu": mu, "sigma": sigma})
    mu, sigma = gaussian(2048, 9)
    mu_d, sigma_d = gaussian(1024, 10)
    doc = {"num_images": 300, "fid": {"mu": mu, "sigma": sigma}, "fd_dinov2": {"mu": mu_d, "sigma": sigma_d}}
    out["edm2/img512"] = (pickle.dumps(doc, protocol=4), {"fid.mu": mu, "fid.sigma": sigma, "fd_dinov2.mu": mu_d,
                                                          "fd_dinov2.sigma": sigma_d})
    return out


@pytest.fixture(scope="module")
def files() -> dict[str, tuple[bytes, dict]]:
    return made_files()


def mirror_path(ref_id: str) -> str:
    parts = urllib.parse.urlsplit(CAT.get(ref_id).url)
    return f"/{parts.netloc}{parts.path}"


@pytest.fixture
def mirror(tmp_path, monkeypatch, files):
    """A mirror serving every synthetic file, and a fresh genbench (empty cache and bundled store)."""
    server = Server()
    for ref_id, (body, _) in files.items():
        server.files[mirror_path(ref_id)] = body
    monkeypatch.setenv("GENBENCH_DOWNLOAD_MIRROR", server.base)
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GENBENCH_REFERENCE_STATS", str(tmp_path / "bundled"))
    yield server
    server.stop()


def store(tmp_path) -> Path:
    return tmp_path / "cache" / "reference_stats"


def store_files(tmp_path) -> list[str]:
    """Every file in the user store (folders aside)."""
    root = store(tmp_path)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def manifest(tmp_path) -> dict[str, dict]:
    doc = json.loads((store(tmp_path) / "manifest.json").read_text())
    return {e["id"]: e for e in doc["entries"]}


def stored_arrays(tmp_path, entry: dict) -> dict[str, np.ndarray]:
    with np.load(store(tmp_path) / entry["file"], allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# ----------------------------------------------------------------------------- every format, fresh store

EXPECT = {  # store id -> (extractor, layer, preprocessing, weights sha256 or "", n, keys in the served file)
    "clean-fid/cifar10_legacy_tensorflow_train_32": ("inception-v3", "pool3", "tf1-bilinear", "sha", 50_000, ("mu", "sigma")),
    "clean-fid/afhq_cat_clean_train_512_kid": ("inception-v3", "pool3", "pil-bicubic", "sha", 60, ("feats",)),
    "ttur/fid_stats_cifar10_train": ("inception-v3", "pool3", "tf1-bilinear", "sha", 50_000, ("mu", "sigma")),
    "adm/VIRTUAL_imagenet64_labeled": ("inception-v3", "pool3", "tf1-bilinear", "sha", 0, ("mu", "sigma")),
    "adm/VIRTUAL_imagenet64_labeled@spatial": ("inception-v3", "spatial", "tf1-bilinear", "sha", 0, ("mu_s", "sigma_s")),
    "edm/cifar10-32x32": ("inception-v3", "pool3", "tf1-bilinear", "sha", 50_000, ("mu", "sigma")),
    "edm2/img512": ("inception-v3", "pool3", "tf1-bilinear", "sha", 300, ("fid.mu", "fid.sigma")),
    "edm2/img512@fd_dinov2": ("dinov2-vit-l14", "cls-norm", "dinov2-torch-bicubic", "", 300,
                              ("fd_dinov2.mu", "fd_dinov2.sigma")),
}
FETCHED = ["clean-fid/cifar10_legacy_tensorflow_train_32", "clean-fid/afhq_cat_clean_train_512_kid",
           "ttur/fid_stats_cifar10_train", "adm/VIRTUAL_imagenet64_labeled", "edm/cifar10-32x32", "edm2/img512"]


@pytest.mark.slow  # six files, eight 2048-d covariances checked: about 25 s on 2 cores
def test_a_fresh_store_fetches_every_format_with_its_provenance(mirror, tmp_path, files):
    res = run("ref", "fetch", *FETCHED)
    assert res.exit_code == 0, res.stderr
    entries = manifest(tmp_path)
    assert set(entries) == set(EXPECT)
    pins = json.loads((store(tmp_path) / "catalogue-sha256.json").read_text())["entries"]
    for store_id, (extractor, layer, policy, weights, n, keys) in EXPECT.items():
        ref_id = store_id.split("@")[0]
        body, arrays = files[ref_id]
        sha = hashlib.sha256(body).hexdigest()
        e = entries[store_id]
        assert (e["extractor"], e["layer"], e["preprocessing"], e["n"]) == (extractor, layer, policy, n), store_id
        assert e["weights_sha256"] == (INCEPTION_V3_WEIGHTS.sha256 if weights else "")
        assert e["command"] == f"genbench ref fetch {ref_id}"
        assert e["provenance"]["source_sha256"] == sha and e["provenance"]["url"] == CAT.get(ref_id).url
        assert e["provenance"]["packaging"].startswith("reference: ") and "; features: " in e["provenance"]["packaging"]
        assert pins[ref_id]["sha256"] == sha and f"recorded sha256 {sha}" in res.stderr  # printed at first download
        saved = stored_arrays(tmp_path, e)
        meta = json.loads(str(saved["meta"]))
        assert meta["extractor"] == extractor and meta["layer"] == layer and meta["preprocessing"] == policy
        assert meta["catalogue_id"] == store_id and meta["source_sha256"] == sha
        assert ("weights_sha256" in meta) == bool(weights)  # DINOv2: no published hash, so none claimed
        if keys == ("feats",):
            assert e["kind"] == "features"
            np.testing.assert_array_equal(saved["features"], arrays["feats"])
        else:
            assert e["kind"] == "statistics" and meta["covariance"].startswith("unbiased")
            np.testing.assert_array_equal(saved["mu"], arrays[keys[0]])  # bit for bit: no round trip
            np.testing.assert_array_equal(saved["sigma"], arrays[keys[1]])
            assert ("n" in saved) == bool(n)  # ADM states no count: none is invented
    # the ADM batch itself is kept, for the arr_0 images precision and recall use; nothing else is
    kept = entries["adm/VIRTUAL_imagenet64_labeled"]["provenance"]["images"]
    assert kept["key"] == "arr_0" and kept["n"] == 12 and Path(kept["path"]).read_bytes() == files[
        "adm/VIRTUAL_imagenet64_labeled"][0]
    assert [p for p in store_files(tmp_path) if p.startswith("downloads")] == [
        "downloads/adm/VIRTUAL_imagenet64_labeled.npz"]
    # fetched again: nothing downloaded, everything verified
    before = len(mirror.requests)
    again = run("ref", "fetch", *FETCHED)
    assert again.exit_code == 0 and "already in the store" in again.stdout and len(mirror.requests) == before
    assert run("ref", "verify").exit_code == 0

    shown = run("ref", "show", "edm2/img512")
    assert shown.exit_code == 0
    for needed in ("dinov2-vit-l14", "dinov2-torch-bicubic", "tf1-bilinear", CAT.get("edm2/img512").url,
                   hashlib.sha256(files["edm2/img512"][0]).hexdigest()):
        assert needed in shown.stdout, needed
    assert re.search(r"\[fd_dinov2\] n in store:\s+300", shown.stdout)
    listed = run("ref", "list", "--catalog", "--source", "edm")
    assert "edm/cifar10-32x32" in listed.stdout and "[fetched]" in listed.stdout


def test_later_copies_are_checked_against_the_recorded_sha256(mirror, tmp_path, files):
    ref_id = "edm/cifar10-32x32"
    assert run("ref", "fetch", ref_id, "-q").exit_code == 0
    first = manifest(tmp_path)[ref_id]
    other_mu, other_sigma = gaussian(2048, 99)
    mirror.files[mirror_path(ref_id)] = npz_bytes(mu=other_mu, sigma=other_sigma)  # valid, but other bytes
    res = run("ref", "fetch", ref_id, "--overwrite", "-q")
    assert res.exit_code == 2 and "expected " + first["provenance"]["source_sha256"] in res.stderr
    assert manifest(tmp_path)[ref_id] == first and run("ref", "verify").exit_code == 0  # the store as it was
    copy = tmp_path / "copy.npz"
    copy.write_bytes(mirror.files[mirror_path(ref_id)])
    res = run("ref", "fetch", ref_id, "--from", copy, "--overwrite", "-q")
    assert res.exit_code == 2 and "recorded at its first import" in res.stderr
    copy.write_bytes(files[ref_id][0])  # the right bytes, copied by hand: accepted offline
    mirror.stop()
    res = run("ref", "fetch", ref_id, "--from", copy, "--overwrite")
    assert res.exit_code == 0, res.stderr
    assert manifest(tmp_path)[ref_id]["provenance"]["source_sha256"] == first["provenance"]["source_sha256"]
    assert "[recorded]" in res.stdout


def test_from_file_on_an_offline_machine(tmp_path, monkeypatch, files):
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GENBENCH_REFERENCE_STATS", str(tmp_path / "bundled"))
    monkeypatch.setenv("GENBENCH_DOWNLOAD_MIRROR", "http://127.0.0.1:9")  # nothing listens: no network
    copy = tmp_path / "VIRTUAL_imagenet64_labeled.npz"
    copy.write_bytes(files["adm/VIRTUAL_imagenet64_labeled"][0])
    res = run("ref", "fetch", "adm/VIRTUAL_imagenet64_labeled", "--from", copy)
    assert res.exit_code == 0, res.stderr
    e = manifest(tmp_path)["adm/VIRTUAL_imagenet64_labeled@spatial"]
    assert e["layer"] == "spatial" and e["provenance"]["source_sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert Path(e["provenance"]["images"]["path"]).is_file()  # copied into the store: the user's copy may go


# ----------------------------------------------------------------------------- faults

@pytest.mark.parametrize("fault, needle", [
    (("status", 404), "HTTP 404"),
    (("truncate", 5000), "truncated"),
    (("stall", 5000), "timed out"),
])
def test_download_faults_exit_2_leave_nothing_and_a_rerun_works(mirror, tmp_path, fault, needle):
    ref_id = "ttur/fid_stats_cifar10_train"
    mirror.faults[mirror_path(ref_id)] = fault
    res = run("ref", "fetch", ref_id, "--timeout", "0.5", "-q")
    assert res.exit_code == 2
    for needed in (needle, CAT.get(ref_id).url, f"genbench ref fetch {ref_id} --from FILE", "GENBENCH_DOWNLOAD_MIRROR"):
        assert needed in res.stderr, needed
    assert store_files(tmp_path) == []  # no manifest, no recorded sha256, no partial file
    del mirror.faults[mirror_path(ref_id)]
    res = run("ref", "fetch", ref_id, "-q")
    assert res.exit_code == 0, res.stderr
    assert ref_id in manifest(tmp_path)


def test_wrong_bytes_on_a_first_download_are_never_recorded(mirror, tmp_path, files):
    ref_id = "clean-fid/cifar10_legacy_tensorflow_train_32"
    path = mirror_path(ref_id)
    mirror.files[path] = b"<html>moved</html>"  # what a server's error page looks like
    res = run("ref", "fetch", ref_id, "-q")
    assert res.exit_code == 2 and "not a readable" in res.stderr
    assert store_files(tmp_path) == []
    mirror.files[path] = npz_bytes(True, mu=np.zeros(64), sigma=np.eye(64))  # a real npz of the wrong width
    res = run("ref", "fetch", ref_id, "-q")
    assert res.exit_code == 2 and "2048-dimensional" in res.stderr and store_files(tmp_path) == []
    mirror.files[path] = files[ref_id][0]
    assert run("ref", "fetch", ref_id, "-q").exit_code == 0


def test_an_interrupted_download_then_a_rerun(mirror, tmp_path, files):
    """A fetch killed mid-download (SIGKILL: no clean-up runs) leaves no store entry; the rerun completes."""
    ref_id = "edm/cifar10-32x32"
    mirror.faults[mirror_path(ref_id)] = ("dribble", 0.05)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "genbench", "ref", "fetch", ref_id, "-q"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        partial = store(tmp_path) / "downloads" / "edm" / ".partial"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (partial.is_dir() and any(
                p.stat().st_size > 0 for p in partial.iterdir())):
            time.sleep(0.1)
        assert partial.is_dir(), "the download never started"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert not (store(tmp_path) / "manifest.json").exists()
    assert not (store(tmp_path) / "downloads" / "edm" / "cifar10-32x32.npz").exists()
    del mirror.faults[mirror_path(ref_id)]
    res = run("ref", "fetch", ref_id, "-q")
    assert res.exit_code == 0, res.stderr
    assert store_files(tmp_path) == sorted(["catalogue-sha256.json", "manifest.json",
                                            manifest(tmp_path)[ref_id]["file"]])  # the dead partial is gone too


# ----------------------------------------------------------------------------- pickles that run code

class _Touch:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_runs_code_is_refused_and_the_code_does_not_run(mirror, tmp_path):
    control = tmp_path / "control-ran"
    pickle.loads(pickle.dumps(_Touch(control)))  # the payload works: plain pickle runs it
    assert control.exists()
    marker = tmp_path / "evil-ran"
    mu, sigma = gaussian(2048, 11)
    doc = {"num_images": 300, "fid": {"mu": mu, "sigma": sigma}, "fd_dinov2": _Touch(marker)}
    mirror.files[mirror_path("edm2/img512")] = pickle.dumps(doc, protocol=4)
    res = run("ref", "fetch", "edm2/img512", "-q")
    assert res.exit_code == 2 and "posix.system" in res.stderr and "refuses" in res.stderr
    assert not marker.exists() and store_files(tmp_path) == []


@pytest.mark.parametrize("protocol, numpy1", [(5, False), (2, False), (2, True)])
def test_pickles_of_arrays_from_other_protocols_and_numpy_1_read(tmp_path, protocol, numpy1):
    """Protocol 5 (Python 3.14's default) and a pickle naming numpy 1's numpy.core module (EDM2's era)."""
    from genbench.stats.foreign import read_edm2_pickle

    mu, sigma = gaussian(16, 12)
    data = pickle.dumps({"num_images": 9, "fid": {"mu": mu, "sigma": sigma}}, protocol=protocol)
    if numpy1:  # protocol 2 names globals as text, so numpy 1's module path can be written in directly
        assert data.count(b"numpy._core.multiarray") == 1
        data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = tmp_path / "stats.pkl"
    path.write_bytes(data)
    got_mu, got_sigma, n = read_edm2_pickle(path, "fid")
    np.testing.assert_array_equal(got_mu, mu)
    np.testing.assert_array_equal(got_sigma, sigma)
    assert n == 9


# ----------------------------------------------------------------------------- identity across packagings

def feature_file(tmp_path, policy: str, n: int = 40) -> Path:
    from genbench.stats.io import FeatureFile, save_features

    feats = np.random.default_rng(13).standard_normal((n, 2048)).astype(np.float32)
    meta = {"extractor": "inception-v3", "layer": "pool3", "preprocessing": policy,
            "weights_sha256": INCEPTION_V3_WEIGHTS.sha256, "feature_dim": 2048}
    path = tmp_path / f"gen_{policy}.npz"
    save_features(path, FeatureFile(feats, None, [str(i) for i in range(n)], None, meta))
    return path


def test_ref_id_fetches_on_first_use_and_a_wrong_policy_is_refused_naming_the_right_one(mirror, tmp_path):
    gen = feature_file(tmp_path, "tf1-bilinear")
    res = run("score", gen, "--ref", "clean-fid/cifar10_clean_train_32", "--metrics", "fd", "-q")
    assert res.exit_code == 2
    assert "preprocessing='pil-bicubic'" in res.stderr and "--preprocessing pil-bicubic" in res.stderr
    assert mirror_path("clean-fid/cifar10_clean_train_32") in mirror.requests  # fetched on first use
    assert "clean-fid/cifar10_clean_train_32" in manifest(tmp_path)


def test_kid_against_a_published_feature_reference_records_both_packagings(mirror, tmp_path):
    gen = feature_file(tmp_path, "pil-bicubic")
    res = run("score", gen, "--ref", "clean-fid/afhq_cat_clean_train_512_kid", "--metrics", "kid",
              "--kid-subset-size", "20", "--kid-subsets", "5", "--json", "-", "-q")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    ref = doc["provenance"]["inputs"]["reference"]
    assert ref["reference_id"] == "clean-fid/afhq_cat_clean_train_512_kid"
    assert ref["packaging"].startswith("reference: NVIDIA TorchScript") and "features: PyTorch port" in ref["packaging"]
    assert "kid" in doc["metrics"]


@pytest.mark.slow  # one 2048-d Frechet distance: about 20 s on 2 cores
def test_fd_against_a_published_statistics_reference_records_both_packagings(mirror, tmp_path):
    gen = feature_file(tmp_path, "tf1-bilinear")
    res = run("score", gen, "--ref", "ttur/fid_stats_cifar10_train", "--metrics", "fd", "--json", "-", "-q")
    assert res.exit_code == 0, res.stderr
    ref = json.loads(res.stdout)["provenance"]["inputs"]["reference"]
    assert ref["reference_id"] == "ttur/fid_stats_cifar10_train" and ref["catalogue_id"] == "ttur/fid_stats_cifar10_train"
    assert ref["packaging"].startswith("reference: TF graph") and "features: PyTorch port" in ref["packaging"]
    assert ref["url"] == CAT.get("ttur/fid_stats_cifar10_train").url


def test_a_published_git_blob_sha1_is_checked(mirror, tmp_path, files):
    """MAR's adm_in256_stats.npz: its repository's tree publishes a git blob SHA-1, which other bytes fail."""
    import dataclasses

    from genbench.stats.fetch import fetch_reference, git_blob_sha1

    ref_id = "mar/adm_in256_stats"
    body = files["ttur/fid_stats_cifar10_train"][0]  # a valid mu/sigma file, but not MAR's
    mirror.files[mirror_path(ref_id)] = body
    res = run("ref", "fetch", ref_id, "-q")
    assert res.exit_code == 2 and "git blob SHA-1" in res.stderr and CAT.get(ref_id).git_blob_sha1 in res.stderr
    assert store_files(tmp_path) == []
    served = tmp_path / "served.npz"
    served.write_bytes(body)
    blob = subprocess.run(["git", "hash-object", str(served)], capture_output=True, text=True, check=True).stdout.strip()
    assert git_blob_sha1(served) == blob  # the same digest git computes
    matching = dataclasses.replace(CAT.get(ref_id), git_blob_sha1=blob)
    result = fetch_reference(matching, progress=False, say=None)
    assert [e.id for e in result.entries] == [ref_id] and result.entries[0].preprocessing == "tf1-bilinear"


def test_unknown_ids_are_refused_before_any_download(mirror, tmp_path):
    res = run("ref", "fetch", "ttur/fid_stats_cifar10_train", "clean-fid/cifar10_clean_train_23")
    assert res.exit_code == 2 and "did you mean" in res.stderr and "ref list --catalog" in res.stderr
    assert mirror.requests == [] and store_files(tmp_path) == []
    res = run("ref", "fetch", "edm/cifar10-32x32", "ttur/fid_stats_cifar10_train", "--from", tmp_path / "x.npz")
    assert res.exit_code == 2 and "exactly one ID" in res.stderr
    res = run("ref", "show", "edm/cifar10-32x32@fid")  # a catalogue id: shown without fetching
    assert res.exit_code == 0 and "not fetched" in res.stdout and mirror.requests == []

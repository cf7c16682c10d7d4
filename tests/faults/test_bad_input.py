"""Bad options and bad files: exit 2 with one line naming the file or option, before any expensive work.

Each case runs through :class:`tests.faults.conftest.Sandbox`, which also checks that no traceback is
printed, no pre-existing file changed and nothing was written outside the places the case allows.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import make_images

TINY = ("--extractor", "test-tiny", "--quiet")


def _arrays(box, n_gen: int = 40, n_ref: int = 50) -> tuple[Path, Path]:
    gen, ref = box.path("gen.npy"), box.path("ref.npy")
    np.save(gen, make_images(n_gen, seed=1, shift=0.1))
    np.save(ref, make_images(n_ref, seed=0))
    return gen, ref


def _image_folder(box, seed: int, n: int = 12) -> Path:
    """``imgs/`` with ``n`` small PNGs."""
    folder = box.path("imgs")
    folder.mkdir()
    for i, im in enumerate(make_images(n, seed=seed)):
        Image.fromarray(im).save(folder / f"{i:02d}.png")
    return folder


def _stats(path: Path, mu: np.ndarray, sigma: np.ndarray, **extra) -> Path:
    np.savez(path, mu=mu, sigma=sigma, **extra)
    return path


def _result(path: Path, metrics: dict, provenance: object = None) -> Path:
    doc: dict = {"schema_version": 1, "metrics": metrics}
    if provenance is not None:
        doc["provenance"] = provenance
    path.write_text(json.dumps(doc))
    return path


# ----------------------------------------------------------------------------- devices and numeric options


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "banana", "cpu:3"])
@pytest.mark.parametrize("verb", ["score", "extract", "check", "baselines-sample"])
def test_unusable_device_is_refused_before_any_work(sandbox, verb, device):
    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        pytest.skip("this machine has the CUDA devices asked for")
    gen, ref = _arrays(sandbox)
    args = {
        "score": ("score", gen, "--ref", ref, *TINY),
        "extract": ("extract", gen, "-o", "f.npz", *TINY),
        "check": ("check", gen, "--ref", ref, "--max", "fd_tiny=1", *TINY),
        "baselines-sample": ("baselines", "sample", "dcgan", "-n", "4", "-o", "s.npz"),
    }[verb]
    sandbox.cli(*args, "--device", device, code=2, expect=("--device",))
    assert not any(sandbox.cache.rglob("*.npz")), "features were extracted before the device was checked"


@pytest.mark.parametrize("args, flag", [
    (("--seed", "-1"), "--seed"),
    (("--seed", "abc"), "--seed"),
    (("--batch-size", "0"), "--batch-size"),
    (("--kid-subset-size", "1"), "--kid-subset-size"),
])
def test_bad_numbers_name_their_option(sandbox, args, flag):
    gen, ref = _arrays(sandbox)
    out = sandbox.cli("score", gen, "--ref", ref, *TINY, *args, code=2)
    assert flag in out.stderr


@pytest.mark.parametrize("value", ["inf", "nan", "0.5", "-3M", "12Q"])
def test_max_memory_must_be_a_finite_size(sandbox, value):
    gen, ref = _arrays(sandbox)
    sandbox.cli("probe", "memorization", gen, "--train", ref, "--test", ref, "--max-memory", value, *TINY,
                code=2, expect=("--max-memory",))


# ----------------------------------------------------------------------------- cheap checks first


def test_kid_subset_size_is_checked_before_extraction(sandbox):
    gen, ref = _arrays(sandbox, 30, 40)
    sandbox.cli("score", gen, "--ref", ref, "--metrics", "fd,is,kid", *TINY, code=2,
                expect=("--kid-subset-size=1000", "30 generated"))
    assert not any(sandbox.cache.rglob("*.npz")), "features were extracted before the size check"


def test_is_splits_are_checked_before_extraction(sandbox):
    gen, ref = _arrays(sandbox, 5, 40)
    sandbox.cli("score", gen, "--ref", ref, "--metrics", "is", "--is-splits", "10", *TINY, code=2,
                expect=("--is-splits=10", "has 5"))
    assert not any(sandbox.cache.rglob("*.npz"))


def test_prdc_k_is_checked_before_extraction(sandbox):
    gen, ref = _arrays(sandbox, 3, 40)
    sandbox.cli("score", gen, "--ref", ref, "--metrics", "precision", *TINY, code=2, expect=("--pr-k", "has 3"))
    assert not any(sandbox.cache.rglob("*.npz"))


@pytest.mark.parametrize("rule", ["fd_tiny", "fd_tiny=abc", "=3", "fd_tiny=nan"])
def test_rule_syntax_is_checked_before_scoring(sandbox, rule):
    gen, ref = _arrays(sandbox)
    sandbox.cli("check", gen, "--ref", ref, "--max", rule, *TINY, code=2, expect=("--max",))
    assert not any(sandbox.cache.rglob("*.npz"))


def test_leaderboard_add_with_too_few_images_is_refused_before_any_row(sandbox, monkeypatch):
    import genbench.leaderboard as lb

    monkeypatch.setattr(lb, "score_rows", lambda *a, **k: pytest.fail("rows were scored before the check"))
    folder = sandbox.path("mine")
    folder.mkdir()
    for i, im in enumerate(make_images(12, seed=3, size=28)):
        Image.fromarray(im).save(folder / f"{i}.png")
    sandbox.cli("leaderboard", "-n", "2000", "--add", "mine=mine", "--out", "board", "--inception", "off", "-q",
                code=2, expect=("--add mine", "12 images", "-n 2000"))


def test_leaderboard_add_callable_with_bad_output_is_refused_on_a_first_small_call(sandbox, monkeypatch):
    import genbench.leaderboard as lb

    monkeypatch.setattr(lb, "score_rows", lambda *a, **k: pytest.fail("rows were scored before the check"))
    sandbox.path("badgen.py").write_text(
        "import numpy as np\n\ndef sample(n, seed):\n    return np.random.default_rng(seed).normal(size=(n, 28, 28))\n"
    )
    out = sandbox.cli("leaderboard", "-n", "500", "--add", "mine=py:badgen.py:sample", "--out", "board",
                      "--inception", "off", "-q", code=2, expect=("--add mine",))
    assert "badgen.py" in out.stderr


# ----------------------------------------------------------------------------- output paths


def test_existing_json_is_not_replaced_without_overwrite(sandbox):
    gen, ref = _arrays(sandbox)
    keep = sandbox.path("result.json")
    keep.write_text("mine")
    sandbox.cli("score", gen, "--ref", ref, "--json", "result.json", *TINY, code=2, expect=("--json", "--overwrite"))


@pytest.mark.parametrize("verb", ["score", "extract"])
def test_output_that_is_a_folder_is_refused_before_the_work_even_with_overwrite(sandbox, verb):
    gen, ref = _arrays(sandbox)
    sandbox.path("out/keep.txt").write_text("mine")
    args = ("score", gen, "--ref", ref, "--json", "out") if verb == "score" else ("extract", gen, "-o", "out")
    sandbox.cli(*args, "--overwrite", *TINY, code=2, expect=("is a folder",))
    assert not any(sandbox.cache.rglob("*.npz"))


def test_output_under_a_file_is_refused(sandbox):
    gen, ref = _arrays(sandbox)
    sandbox.path("afile").write_text("mine")
    sandbox.cli("score", gen, "--ref", ref, "--json", "afile/result.json", *TINY, code=2,
                expect=("--json", "not a folder"))


def test_baselines_sample_onto_an_existing_file_is_refused(sandbox):
    sandbox.path("samples").write_text("mine")
    sandbox.path("s.npz").write_bytes(b"mine")
    sandbox.cli("baselines", "sample", "dcgan", "-n", "4", "-o", "samples", code=2, expect=("-o samples", "is a file"))
    sandbox.cli("baselines", "sample", "dcgan", "-n", "4", "-o", "s.npz", code=2, expect=("-o s.npz", "--overwrite"))


@pytest.mark.parametrize("flag", ["--json", "--save-result"])
def test_check_does_not_replace_files_without_overwrite(sandbox, flag):
    gen, ref = _arrays(sandbox)
    sandbox.path("keep.json").write_text("mine")
    sandbox.cli("check", gen, "--ref", ref, "--max", "fd_tiny=1e9", flag, "keep.json", *TINY, code=2,
                expect=(flag, "--overwrite"))


def test_check_writes_with_overwrite(sandbox):
    gen, ref = _arrays(sandbox)
    sandbox.path("keep.json").write_text("mine")
    sandbox.cli("check", gen, "--ref", ref, "--metrics", "fd_tiny", "--max", "fd_tiny=1e9", "--json", "keep.json",
                "--overwrite", *TINY, code=0, outputs=("keep.json",))
    assert json.loads(sandbox.path("keep.json").read_text())["passed"] is True


def test_leaderboard_does_not_write_into_a_folder_that_is_not_empty(sandbox):
    sandbox.path("board/leaderboard.md").write_text("mine")
    sandbox.cli("leaderboard", "-n", "10", "--out", "board", "--inception", "off", "-q", code=2,
                expect=("--out board", "--overwrite"))


def test_results_list_does_not_create_a_history(sandbox):
    sandbox.cli("results", "list", "--history", "typo.sqlite", code=2, expect=("typo.sqlite", "no such results history"))
    assert not sandbox.path("typo.sqlite").exists()


def test_check_baseline_from_a_missing_history_creates_nothing(sandbox):
    gen, ref = _arrays(sandbox)
    sandbox.cli("check", gen, "--ref", ref, "--baseline", "latest", "--history", "nohist.sqlite", "--max-increase",
                "fd_tiny=1", *TINY, code=2, expect=("nohist.sqlite",))


# ----------------------------------------------------------------------------- reference store


@pytest.mark.parametrize("ref_id", ["../../escaped", "/abs/victim", "a/b", "..", ".hidden", "x" * 200])
def test_ref_import_ids_never_become_paths(sandbox, ref_id):
    stats = _stats(sandbox.path("plain.npz"), np.zeros(4), np.eye(4), n=np.int64(10))
    sandbox.cli("ref", "import", stats, "--id", ref_id, "--dataset", "d", "--split", "s", "--extractor", "test-tiny",
                "--weights-sha256", "0" * 64, "--layer", "proj", "--preprocessing", "avgpool8", code=2,
                expect=("--id",))


def test_ref_import_writes_only_into_the_store(sandbox):
    stats = _stats(sandbox.path("plain.npz"), np.zeros(4), np.eye(4), n=np.int64(10))
    sandbox.cli("ref", "import", stats, "--id", "my-ref.v1", "--dataset", "d", "--split", "s", "--extractor",
                "test-tiny", "--weights-sha256", "0" * 64, "--layer", "proj", "--preprocessing", "avgpool8", code=0)
    files = sorted(p.name for p in (sandbox.cache / "reference_stats").iterdir())
    assert "manifest.json" in files and len(files) == 2


@pytest.mark.parametrize("content", ["[]", '{"entries": {}}', '{"entries": [1]}', "not json",
                                     '{"entries": [{"id": "x", "file": "../../etc/passwd"}]}'])
def test_a_broken_user_manifest_leaves_the_bundled_references_working(sandbox, content):
    store = sandbox.cache / "reference_stats"
    store.mkdir()
    (store / "manifest.json").write_text(content)
    out = sandbox.cli("ref", "list", code=0)
    assert "fashion-mnist-train_fmnist-cnn" in out.stdout
    assert "ignoring the user reference store" in out.stderr and "manifest.json" in out.stderr


# ----------------------------------------------------------------------------- statistics files


@pytest.mark.parametrize("n, expect", [
    (np.str_("100"), "sample count"),
    (np.arange(3), "sample count"),
    (np.float64(2.5), "whole number"),
    (np.int64(0), "whole number"),
])
def test_stats_with_a_bad_count_are_refused(sandbox, n, expect):
    gen, _ = _arrays(sandbox)
    bad = _stats(sandbox.path("bad.npz"), np.zeros(16), np.eye(16), n=n)
    sandbox.cli("score", gen, "--ref", bad, *TINY, code=2, expect=("bad.npz", expect))


def test_indefinite_covariance_is_refused_not_scored_negative(sandbox):
    gen, _ = _arrays(sandbox)
    sigma = np.eye(16)
    sigma[0, 1] = sigma[1, 0] = 3.0  # positive diagonal, eigenvalues 4 and -2 in that block
    bad = _stats(sandbox.path("indef.npz"), np.zeros(16), sigma, n=np.int64(100))
    sandbox.cli("score", gen, "--ref", bad, *TINY, code=2, expect=("indef.npz", "positive semi-definite"))


def test_asymmetric_covariance_is_refused(sandbox):
    gen, _ = _arrays(sandbox)
    sigma = np.eye(16)
    sigma[0, 1] = 0.5
    bad = _stats(sandbox.path("asym.npz"), np.zeros(16), sigma, n=np.int64(100))
    sandbox.cli("score", gen, "--ref", bad, *TINY, code=2, expect=("asym.npz", "not symmetric"))


def test_rank_deficient_covariance_from_few_samples_is_accepted(sandbox):
    """Fewer samples than dimensions give a singular but valid covariance: rounding must not be refused."""
    gen, ref = _arrays(sandbox, 40, 12)
    sandbox.cli("stats", ref, "-o", "few.npz", *TINY, code=0, outputs=("few.npz",))
    sandbox.cli("score", gen, "--ref", "few.npz", "--metrics", "fd", *TINY, code=0)


def test_npy_under_an_npz_name_is_refused(sandbox):
    gen, _ = _arrays(sandbox)
    np.save(sandbox.path("fake.npy"), np.zeros((4, 4)))
    sandbox.path("fake.npy").rename(sandbox.path("fake.npz"))
    sandbox.cli("score", gen, "--ref", "fake.npz", *TINY, code=2, expect=("fake.npz",))
    sandbox.cli("score", "fake.npz", "--ref", gen, *TINY, code=2, expect=("fake.npz",))


@pytest.mark.parametrize("kind", ["npy", "npz-images", "npz-stats", "npz-features"])
def test_pickled_objects_are_refused_in_every_file_kind(sandbox, kind):
    gen, ref = _arrays(sandbox)
    obj = np.array([{"evil": 1}, None], dtype=object)
    if kind == "npy":
        np.save(sandbox.path("p.npy"), obj, allow_pickle=True)
        name, args = "p.npy", ("score", "p.npy", "--ref", ref)
    else:
        key = {"npz-images": "images", "npz-stats": "mu", "npz-features": "features"}[kind]
        arrays = {key: obj}
        if kind == "npz-stats":
            arrays["sigma"] = np.eye(2)
        np.savez(sandbox.path("p.npz"), **arrays, allow_pickle=True)
        name = "p.npz"
        args = ("score", gen, "--ref", "p.npz") if kind != "npz-images" else ("score", "p.npz", "--ref", ref)
    sandbox.cli(*args, *TINY, code=2, expect=(name,))


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint\n", b"PK\x03\x04garbage"])
def test_a_file_that_is_no_checkpoint_is_refused(sandbox, content):
    sandbox.path("notes.pt").write_bytes(content)
    sandbox.cli("baselines", "sample", "notes.pt", "-n", "4", "-o", "s.npz", code=2, expect=("notes.pt",))


def test_a_pickle_checkpoint_is_refused_without_running_it(sandbox):
    import pickle

    class Evil:
        def __reduce__(self):
            return (Path.touch, (sandbox.path("pwned"),))

    with open(sandbox.path("evil.pt"), "wb") as fh:
        torch.save({"x": Evil()}, fh, pickle_module=pickle)
    sandbox.cli("baselines", "sample", "evil.pt", "-n", "4", "-o", "s.npz", code=2, expect=("evil.pt",))
    assert not sandbox.path("pwned").exists()


# ----------------------------------------------------------------------------- archives and images


def test_zip_member_with_a_corrupt_deflate_stream(sandbox):
    _, ref = _arrays(sandbox)
    buf = io.BytesIO()
    Image.fromarray(make_images(1, seed=0)[0]).save(buf, format="PNG")
    with zipfile.ZipFile(sandbox.path("bad.zip"), "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.png", buf.getvalue() * 4)
        for i in range(12):
            zf.writestr(f"b{i:02d}.png", buf.getvalue())
    data = bytearray(sandbox.path("bad.zip").read_bytes())
    start = data.index(b"a.png") + len("a.png")
    for i in range(start + 10, start + 60):
        data[i] ^= 0xFF
    sandbox.path("bad.zip").write_bytes(bytes(data))
    sandbox.cli("score", "bad.zip", "--ref", ref, "--metrics", "fd", *TINY, code=2, expect=("bad.zip", "a.png"))


def test_zip_bomb_is_refused_with_bounded_memory(sandbox):
    _, ref = _arrays(sandbox)
    buf = io.BytesIO()
    Image.fromarray(make_images(1, seed=0)[0]).save(buf, format="PNG")
    with zipfile.ZipFile(sandbox.path("bomb.zip"), "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(12):
            zf.writestr(f"a{i:02d}.png", buf.getvalue())
        with zf.open("big.png", "w") as fh:
            block = b"\0" * (1 << 20)
            for _ in range(512):
                fh.write(block)
    assert sandbox.path("bomb.zip").stat().st_size < 2 << 20
    sandbox.cli("score", "bomb.zip", "--ref", ref, "--metrics", "fd", *TINY, code=2,
                expect=("bomb.zip", "big.png", "GENBENCH_MAX_MEMBER_BYTES"))


@pytest.mark.parametrize("make", ["truncated", "zero-byte", "text"])
def test_unreadable_images_in_a_folder_are_skipped_or_named(sandbox, make):
    _, ref = _arrays(sandbox)
    folder = _image_folder(sandbox, seed=4)
    bad = folder / "zz.png"
    if make == "truncated":
        bad.write_bytes((folder / "00.png").read_bytes()[:40])
    elif make == "zero-byte":
        bad.write_bytes(b"")
    else:
        bad.write_text("not an image")
    out = sandbox.cli("score", "imgs", "--ref", ref, "--metrics", "fd", *TINY, code=2)
    assert "zz.png" in out.stderr


@pytest.mark.parametrize("mode", ["I;16", "P", "LA", "CMYK", "1", "RGBA"])
def test_unusual_image_modes_are_converted(sandbox, mode):
    _, ref = _arrays(sandbox)
    folder = sandbox.path("imgs")
    folder.mkdir()
    for i, im in enumerate(make_images(12, seed=5)):
        pic = Image.fromarray(im)
        pic = pic.convert("L").convert(mode) if mode in ("I;16", "LA", "1") else pic.convert(mode)
        pic.save(folder / f"{i:02d}.{'jpg' if mode == 'CMYK' else 'png'}")
    sandbox.cli("score", "imgs", "--ref", ref, "--metrics", "fd", *TINY, code=0)


def test_decompression_bomb_header_is_refused(sandbox):
    _, ref = _arrays(sandbox)
    folder = _image_folder(sandbox, seed=7)
    Image.new("1", (30000, 30000)).save(folder / "huge.png")
    sandbox.cli("score", "imgs", "--ref", ref, "--metrics", "fd", *TINY, code=2, expect=("huge.png",))


def test_links_without_an_image_name_are_skipped_and_an_image_link_loop_is_named(sandbox):
    _, ref = _arrays(sandbox)
    folder = _image_folder(sandbox, seed=6)
    (folder / "loop").symlink_to(folder / "loop")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder)
    sandbox.cli("score", "imgs", "--ref", ref, "--metrics", "fd", *TINY, code=0)
    (folder / "loop.png").symlink_to(folder / "loop.png")  # used to be dropped silently: n one lower
    sandbox.cli("score", "imgs", "--ref", ref, "--metrics", "fd", *TINY, code=2,
                expect=("loop.png", "symbolic link loop"))
    (folder / "loop.png").unlink()
    (folder / "dangling.png").symlink_to(folder / "missing.png")
    sandbox.cli("score", "imgs", "--ref", ref, "--metrics", "fd", *TINY, code=2, expect=("dangling.png", "dangling"))


# ----------------------------------------------------------------------------- result documents for check


@pytest.mark.parametrize("metrics, provenance, expect", [
    ({"fd_tiny": "12"}, None, "must be an object"),
    ({"fd_tiny": None}, None, "must be an object"),
    ({"fd_tiny": 12.0}, None, "must be an object"),
    ({"fd_tiny": {"value": "12"}}, None, "finite number"),
    ({"fd_tiny": {"value": float("nan")}}, None, "finite number"),
    ({"fd_tiny": {"std": 1}}, None, "neither 'value' nor 'mean'"),
    ({"fd_tiny": {"value": 1, "ci95": [1]}}, None, "ci95"),
    ({"fd_tiny": {"value": 1, "ci95": "wide"}}, None, "ci95"),
    ({"fd_tiny": {"value": 1, "ci95": [0, "x"]}}, None, "ci95"),
    ({"fd_tiny": {"value": 1}}, ["not", "an", "object"], "provenance"),
    ({"fd_tiny": {"value": 1}}, {"metric_options": 3}, "provenance.metric_options"),
])
@pytest.mark.parametrize("side", ["new", "baseline"])
def test_check_refuses_malformed_result_documents(sandbox, metrics, provenance, expect, side):
    good = _result(sandbox.path("good.json"), {"fd_tiny": {"value": 1.0}}, {"extractor": "test-tiny"})
    bad = _result(sandbox.path("bad.json"), metrics, provenance)
    new, base = (bad, good) if side == "new" else (good, bad)
    sandbox.cli("check", new, "--baseline", base, "--max-increase", "fd_tiny=1", code=2, expect=(expect, "bad.json"))


def test_check_exit_codes_mean_one_thing(sandbox):
    base = _result(sandbox.path("base.json"), {"fd_tiny": {"value": 10.0}}, {"extractor": "test-tiny"})
    same = _result(sandbox.path("same.json"), {"fd_tiny": {"value": 10.5}}, {"extractor": "test-tiny"})
    worse = _result(sandbox.path("worse.json"), {"fd_tiny": {"value": 30.0}}, {"extractor": "test-tiny"})
    sandbox.cli("check", same, "--baseline", base, "--max-increase", "fd_tiny=1", code=0)
    sandbox.cli("check", worse, "--baseline", base, "--max-increase", "fd_tiny=1", code=1)
    sandbox.cli("check", worse, "--baseline", "missing.json", "--max-increase", "fd_tiny=1", code=2,
                expect=("missing.json",))


# ----------------------------------------------------------------------------- messages name the input


def test_too_few_samples_names_the_input(sandbox):
    gen, _ = _arrays(sandbox)
    np.save(sandbox.path("one.npy"), make_images(1, seed=9))
    out = sandbox.cli("score", gen, "--ref", "one.npy", "--metrics", "fd", *TINY, code=2, expect=("one.npy",))
    assert "at least 2" in out.stderr


def test_unknown_extractor_lists_the_known_ones(sandbox):
    gen, ref = _arrays(sandbox)
    sandbox.cli("score", gen, "--ref", ref, "--extractor", "nope", "-q", code=2, expect=("nope", "fmnist-cnn"))


def test_an_unexpected_failure_is_exit_2_with_one_line(sandbox, monkeypatch):
    import genbench.evaluate as ev

    def broken(*args, **kwargs):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(ev, "open_input", broken)
    gen, ref = _arrays(sandbox)
    sandbox.cli("score", gen, "--ref", ref, *TINY, code=2, expect=("internal error", "ZeroDivisionError"))


def test_preprocessing_from_a_reference_is_named_as_coming_from_that_file(sandbox):
    gen, _ = _arrays(sandbox)
    meta = {"extractor": "fmnist-cnn", "layer": "penultimate", "preprocessing": "no-such-policy",
            "weights_sha256": "0" * 64, "feature_dim": 16, "n": 100}
    _stats(sandbox.path("odd.npz"), np.zeros(16), np.eye(16), n=np.int64(100), meta=np.str_(json.dumps(meta)))
    out = sandbox.cli("score", gen, "--ref", "odd.npz", "-q", code=2, expect=("odd.npz", "no-such-policy"))
    assert "--preprocessing" not in out.stderr

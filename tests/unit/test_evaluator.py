"""genbench.Evaluator: streaming statistics and reservoir against genbench.score on the test-tiny extractor."""
from __future__ import annotations

import io
import os
import socket
import tempfile

import numpy as np
import pytest
import torch

import genbench
from genbench.config import MetricOptions
from genbench.errors import ConfigError, InputError
from genbench.evaluator import Evaluator
from genbench.stats.io import save_stats
from tests.conftest import make_images

MO = MetricOptions(kid_subset_size=40, kid_subsets=20, is_splits=5)


@pytest.fixture(scope="module")
def data():
    return make_images(120, seed=0), make_images(100, seed=1, shift=0.1)


def _ev(ref, **kw):
    kw.setdefault("extractor", "test-tiny")
    kw.setdefault("cache", False)
    kw.setdefault("metric_options", MO)
    return Evaluator(ref, **kw)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def test_batch_split_invariance(data):
    ref, gen = data
    fds = []
    for splits in ([100], [1, 99], [37, 13, 50], [7] * 14 + [2]):
        ev = _ev(ref, metrics=["fd"])
        start = 0
        for size in splits:
            ev.update(gen[start:start + size])
            start += size
        assert ev.num_samples == 100
        fds.append(ev.compute().value("fd_tiny"))
    for fd in fds[1:]:
        assert _rel(fd, fds[0]) < 1e-9


def test_compute_mid_stream_changes_nothing(data):
    ref, gen = data
    a = _ev(ref, metrics=["fd", "kid", "is"], max_samples=60)
    b = _ev(ref, metrics=["fd", "kid", "is"], max_samples=60)
    a.update(gen[:70])
    a.compute()  # extracts the 6 waiting images on a copy of the state
    a.compute()
    a.update(gen[70:])
    b.update(gen)
    ra, rb = a.compute(), b.compute()
    assert _rel(ra.value("fd_tiny"), rb.value("fd_tiny")) < 1e-12
    assert ra["kid_tiny"]["mean"] == pytest.approx(rb["kid_tiny"]["mean"], rel=1e-12)
    assert ra["is_tiny"]["mean"] == pytest.approx(rb["is_tiny"]["mean"], rel=1e-12)


@pytest.mark.parametrize("make", [
    lambda r: r.integers(0, 256, (3, 2, 5, 3), dtype=np.uint8),  # NHWC
    lambda r: r.integers(0, 65536, (3, 1, 5, 6), dtype=np.uint16),  # NCHW grey, 16-bit
    lambda r: r.integers(0, 256, (2, 4, 5, 6), dtype=np.uint8),  # RGBA: alpha dropped
    lambda r: r.integers(0, 256, (5, 6, 7), dtype=np.uint8),  # NHW
    lambda r: (np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5) % 256 + 0.5) / 255.0,  # halves: round to even
    lambda r: r.random((2, 6, 7, 1)).astype(np.float16),
    lambda r: r.random((2, 3, 6, 7), dtype=np.float32),
])
def test_tensor_conversion_equals_numpy_rules(make):
    from genbench.evaluator import _tensor_to_rgb_uint8
    from genbench.sources.convert import array_to_rgb_uint8_batch

    arr = make(np.random.default_rng(0))
    want = array_to_rgb_uint8_batch(arr, "x")
    t = torch.from_numpy(arr.astype(np.int32)).to(torch.uint16) if arr.dtype == np.uint16 else torch.from_numpy(arr)
    got = _tensor_to_rgb_uint8(t, "x")
    assert got.dtype == torch.uint8 and got.is_contiguous()
    np.testing.assert_array_equal(got.numpy(), want)


def test_equal_to_score(data):
    ref, gen = data
    ev = _ev(ref)  # default metrics: fd, is, kid
    ev.update(gen[:50])  # not on a network-batch boundary (batch_size 64)
    ev.update(torch.from_numpy(gen[50:]))  # numpy and torch inputs mix
    got = ev.compute()
    want = genbench.score(gen, ref, extractor="test-tiny", cache=False, kid_subset_size=40, kid_subsets=20, is_splits=5)
    assert set(got.metrics) == set(want.metrics) == {"fd_tiny", "is_tiny", "kid_tiny"}
    assert got.metrics["fd_tiny"].keys() == want.metrics["fd_tiny"].keys()  # its own FD path, the registry's entry
    assert _rel(got.value("fd_tiny"), want.value("fd_tiny")) < 1e-9
    for name in ("is_tiny", "kid_tiny"):
        assert got[name]["mean"] == pytest.approx(want[name]["mean"], rel=1e-9)
        assert got[name]["std"] == pytest.approx(want[name]["std"], rel=1e-9, abs=1e-15)
    for key in ("extractor", "layer", "preprocessing", "weights_sha256", "feature_dim", "seed", "metric_options"):
        assert got.provenance[key] == want.provenance[key]
    assert got.provenance["inputs"]["generated"]["n"] == 100
    assert got.provenance["inputs"]["reference"]["n"] == 120


def test_evaluator_and_score_are_one_engine_for_every_metric_kind(data):
    """The same prepared run and accumulator serve both: the k-NN metrics (one shared sweep) and the bootstrap
    interval of FD agree as well, not only the moments."""
    ref, gen = data
    kinds = ["fd", "kid", "precision", "recall", "density", "coverage"]
    mo = MetricOptions(seed=3, kid_subset_size=40, kid_subsets=10, bootstrap=8)
    ev = Evaluator(ref, metrics=kinds, extractor="test-tiny", cache=False, metric_options=mo)
    for start in range(0, 100, 30):
        ev.update(gen[start:start + 30])
    got = ev.compute()
    want = genbench.score(gen, ref, kinds, extractor="test-tiny", cache=False, seed=3, kid_subset_size=40,
                          kid_subsets=10, bootstrap=8)
    assert set(got.metrics) == set(want.metrics)
    for name, entry in want.metrics.items():
        for key in ("value", "mean", "ci95"):
            if key in entry:
                np.testing.assert_allclose(got.metrics[name][key], entry[key], rtol=1e-9, atol=1e-12, err_msg=name)


def test_float_and_layouts_match_uint8(data):
    ref, gen = data
    a = _ev(ref, metrics=["fd"])
    a.update(gen)
    b = _ev(ref, metrics=["fd"])
    b.update(gen.astype(np.float32) / 255.0)  # NHWC float numpy
    c = _ev(ref, metrics=["fd"])
    c.update(torch.from_numpy(gen).permute(0, 3, 1, 2).double() / 255.0)  # NCHW float64 tensor
    fa = a.compute().value("fd_tiny")
    assert _rel(b.compute().value("fd_tiny"), fa) < 1e-9
    assert _rel(c.compute().value("fd_tiny"), fa) < 1e-9


def test_reference_from_stats_file_and_compute_does_not_clear(data, tmp_path):
    ref, gen = data
    base = _ev(ref, metrics=["fd"])
    path = tmp_path / "ref_stats.npz"
    save_stats(path, base.reference.stats, base.identity)
    ev = _ev(str(path), metrics=["fd"], extractor=None)  # extractor follows the file's metadata
    ev.update(gen)
    first = ev.compute().value("fd_tiny")
    assert _rel(ev.compute().value("fd_tiny"), first) < 1e-12  # compute() keeps the state
    base.update(gen)
    assert _rel(base.compute().value("fd_tiny"), first) < 1e-9


def test_fd_only_keeps_no_rows(data):
    ref, gen = data
    ev = _ev(ref, metrics=["fd"])
    for _ in range(5):
        ev.update(gen)
    assert ev.reservoir_size == 0 and "reservoir_features" not in ev.state_dict()


def test_state_dict_round_trip(data):
    ref, gen = data
    a = _ev(ref, metrics=["fd", "kid"], max_samples=50)
    a.update(gen[:60])
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = _ev(ref, metrics=["fd", "kid"], max_samples=50)
    b.load_state_dict(torch.load(buf, weights_only=True))
    for ev in (a, b):
        ev.update(gen[60:])
    ra, rb = a.compute(), b.compute()
    assert ra.value("fd_tiny") == rb.value("fd_tiny")
    assert ra["kid_tiny"] == rb["kid_tiny"]  # same reservoir and sampling stream after the round trip
    with pytest.raises(ConfigError, match="max_samples"):
        _ev(ref, metrics=["fd", "kid"], max_samples=51).load_state_dict(a.state_dict())
    with pytest.raises(ConfigError, match="reservoir_features"):
        _ev(ref, metrics=["fd"], max_samples=50).load_state_dict(a.state_dict())


def test_reservoir_deterministic_for_a_seed_and_split(data):
    ref, gen = data
    stream = np.concatenate([gen, gen[::-1], gen[:50]])  # 250 samples into a reservoir of 40

    def reservoir(seed, sizes):
        ev = _ev(ref, metrics=["kid"], max_samples=40, seed=seed)
        start = 0
        for size in sizes:
            ev.update(stream[start:start + size])
            start += size
        assert ev.reservoir_size == 40 and ev.num_samples == 250
        return ev.state_dict()["reservoir_features"].numpy()

    r0 = reservoir(0, [250])
    np.testing.assert_array_equal(r0, reservoir(0, [250]))
    np.testing.assert_array_equal(r0, reservoir(0, [3, 97, 1, 149]))  # same network batches and rows, any split
    assert not np.allclose(r0, reservoir(1, [250]))


def test_reset_keeps_reference(data):
    ref, gen = data
    ev = _ev(ref, metrics=["fd", "kid"])
    ev.update(make_images(50, seed=9))
    ev.reset()
    assert ev.num_samples == 0 and ev.reservoir_size == 0
    with pytest.raises(InputError, match="compute\\(\\) before any update"):
        ev.compute()
    ev.update(gen)
    fresh = _ev(ref, metrics=["fd", "kid"])
    fresh.update(gen)
    a, b = ev.compute(), fresh.compute()
    assert _rel(a.value("fd_tiny"), b.value("fd_tiny")) < 1e-9
    assert a["kid_tiny"]["mean"] == pytest.approx(b["kid_tiny"]["mean"], rel=1e-9)


def test_bad_inputs(data):
    ref, gen = data
    ev = _ev(ref, metrics=["fd"])
    with pytest.raises(InputError, match="compute\\(\\) before any update"):
        ev.compute()
    with pytest.raises(InputError, match=r"images.*\(x \+ 1\) / 2"):
        ev.update(gen.astype(np.float32) / 127.5 - 1.0)
    with pytest.raises(InputError, match=r"images.*\(x \+ 1\) / 2"):
        ev.update(torch.from_numpy(gen).float())  # 0..255 floats
    with pytest.raises(InputError, match=r"images.*NaN"):
        ev.update(torch.full((2, 3, 8, 8), float("nan")))
    with pytest.raises(InputError, match="images.*int64"):
        ev.update(torch.zeros((2, 3, 8, 8), dtype=torch.int64))
    with pytest.raises(InputError, match="images.*int32"):
        ev.update(np.zeros((2, 8, 8, 3), dtype=np.int32))
    with pytest.raises(InputError, match="images.*channel"):
        ev.update(np.zeros((2, 5, 8, 6), dtype=np.uint8))
    with pytest.raises(InputError, match="images.*channel"):
        ev.update(torch.zeros((2, 5, 8, 6), dtype=torch.uint8))
    with pytest.raises(InputError, match="images"):
        ev.update(torch.zeros((8, 8), dtype=torch.uint8))
    with pytest.raises(InputError, match="images"):
        ev.update([1, 2, 3])
    assert ev.num_samples == 0  # nothing bad was added
    ev.update(gen[:1])
    with pytest.raises(InputError, match="at least 2"):
        ev.compute()
    with pytest.raises(ConfigError, match="max_samples"):
        _ev(ref, max_samples=1)
    with pytest.raises(ConfigError, match="metrics"):
        _ev(ref, metrics=["fid"])  # another extractor's name


def test_bad_tensors_and_devices(data, monkeypatch):
    import genbench.evaluator as module

    ref, _ = data
    ev = _ev(ref, metrics=["fd"])
    with pytest.raises(InputError, match="images.*meta device"):
        ev.update(torch.zeros((2, 3, 8, 8), dtype=torch.uint8, device="meta"))
    with pytest.raises(InputError, match="images.*dense tensor.*to_dense"):
        ev.update(torch.zeros((2, 3, 8, 8)).to_sparse())

    class Unmovable:
        """What the conversion returns for a batch on a device that cannot reach the evaluator's."""

        def to(self, *args, **kwargs):
            raise RuntimeError("no path between these devices\nsecond line")

    monkeypatch.setattr(module, "_tensor_to_rgb_uint8", lambda t, name, layout=None: Unmovable())
    with pytest.raises(InputError, match=r"images.*cannot be moved to the evaluator's device cpu.*no path between"):
        ev.update(torch.zeros((2, 3, 8, 8), dtype=torch.uint8))
    assert ev.num_samples == 0


def test_load_state_dict_rejects_malformed_states(data):
    ref, gen = data
    ev = _ev(ref, metrics=["fd", "kid"], max_samples=50)
    ev.update(gen[:70])
    good = ev.state_dict()
    target = _ev(ref, metrics=["fd", "kid"], max_samples=50)
    target.update(gen[:3])
    cases = [
        ({"n": None}, "n must be a torch.Tensor"),
        ({"outer": np.zeros((16, 16))}, "outer must be a torch.Tensor"),
        ({"total": torch.zeros(15, dtype=torch.float64)}, r"total/outer have shapes \(15,\)"),
        ({"rng_state": torch.zeros(5, dtype=torch.int64)}, r"rng_state int64 \[6\]"),
        ({"n": torch.tensor(-1)}, "n=-1 is negative"),
        ({"reservoir_features": good["reservoir_features"][:10]}, r"reservoir_features has shape \(10, 16\)"),
        ({"pending_images": torch.zeros((2, 8, 8), dtype=torch.uint8)}, "pending_images must be uint8"),
    ]
    for change, message in cases:
        with pytest.raises(ConfigError, match=message):
            target.load_state_dict({**good, **change})
        assert target.num_samples == 3  # a rejected state changes nothing
    bad_key = dict(good)
    del bad_key["rng_state"]
    with pytest.raises(ConfigError, match="rng_state must be a torch.Tensor"):
        target.load_state_dict(bad_key)
    target.load_state_dict(good)
    assert target.num_samples == 70


def test_default_batch_size_per_extractor_and_device(data):
    from genbench.config import default_batch_size

    ref, _ = data
    assert _ev(ref, metrics=["fd"]).xo.batch_size == default_batch_size("test-tiny", "cpu") == 64
    assert _ev(ref, metrics=["fd"], batch_size=7).xo.batch_size == 7
    # The extractor comes from the bundled statistics' metadata, and with it that extractor's default.
    fmnist = Evaluator("fashion-mnist:train", metrics=["fd_fmnist"])
    assert fmnist.xo.extractor is None and fmnist.xo.batch_size == default_batch_size("fmnist-cnn", "cpu") == 256


def test_reference_of_another_extractor(tmp_path):
    from genbench.evaluate import open_input
    from genbench.stats.feature_stats import FeatureStats

    fmnist = open_input("fashion-mnist:train", "reference", None, None)  # bundled statistics of fmnist-cnn
    path = tmp_path / "fmnist_stats.npz"
    feats = np.random.default_rng(0).normal(size=(50, 128))
    save_stats(path, FeatureStats.from_features(feats), {k: fmnist.identity[k] for k in
                                                          ("extractor", "layer", "preprocessing", "weights_sha256",
                                                           "feature_dim")})
    with pytest.raises(ConfigError, match="reference.*extractor"):
        _ev(str(path), extractor="test-tiny")
    with pytest.raises(ConfigError, match="reference"):
        _ev("fashion-mnist:train", metrics=["fd", "kid"], extractor=None)  # statistics only: no features for KID


# ----------------------------------------------------------------------------- torch.distributed (gloo)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dist_worker(rank: int, world: int, port: int, out_dir: str, max_samples: int) -> None:
    import torch.distributed as dist

    from tests.conftest import TinyExtractor  # noqa: F401  (registers test-tiny in this process)

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        ref, gen = make_images(120, seed=0), make_images(100, seed=1, shift=0.1)
        ev = Evaluator(ref, metrics=["fd", "kid", "is"], extractor="test-tiny", cache=False, metric_options=MO,
                       max_samples=max_samples)
        if rank == 0:  # rank 1 sees no images at all
            ev.update(gen[:30])
            ev.update(gen[30:])
        res = ev.compute()
        # Both ranks with images, reservoirs overflowing: the merged reservoir is the same on every rank.
        small = Evaluator(ref, metrics=["kid"], extractor="test-tiny", cache=False, metric_options=MO, max_samples=45)
        small.update(gen[rank * 50:(rank + 1) * 50])
        kid_small = small.compute()["kid_tiny"]["mean"]
        np.save(os.path.join(out_dir, f"rank{rank}.npy"), np.array(
            [res.value("fd_tiny"), res["kid_tiny"]["mean"], res["is_tiny"]["mean"],
             res.provenance["inputs"]["generated"]["n"], kid_small,
             small.compute().provenance["inputs"]["generated"]["reservoir"]["kept"]]))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_equals_one_process(data):
    import torch.multiprocessing as mp

    ref, gen = data
    one = _ev(ref, metrics=["fd", "kid", "is"])
    one.update(gen)
    want = one.compute()
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_dist_worker, args=(2, _free_port(), out, 10_000), nprocs=2, join=True)
        got = [np.load(os.path.join(out, f"rank{r}.npy")) for r in range(2)]
    np.testing.assert_allclose(got[0], got[1], rtol=0, atol=0)  # every rank returns the same numbers
    fd, kid, is_, n, _, kept_small = got[0]
    assert n == 100 and kept_small == 45
    assert _rel(fd, want.value("fd_tiny")) < 1e-9
    assert kid == pytest.approx(want["kid_tiny"]["mean"], rel=1e-9)
    assert is_ == pytest.approx(want["is_tiny"]["mean"], rel=1e-9)

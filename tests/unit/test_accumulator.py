"""The one streaming accumulator (genbench.extraction.accumulator) against plain numpy on the same rows."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genbench.errors import InputError
from genbench.extraction.accumulator import FeatureAccumulator, merge_banks


def _rows(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32))


@pytest.mark.parametrize("cuts", [[100], [1, 99], [33, 33, 34], [7] * 14 + [2]])
def test_sums_equal_numpy_for_any_batching(cuts):
    x = _rows(100, 6, 0)
    acc = FeatureAccumulator(6)
    start = 0
    for size in cuts:
        acc.add(x[start:start + size])
        start += size
    got = acc.finish("t").stats
    f = x.numpy().astype(np.float64)
    assert got.n == 100
    np.testing.assert_allclose(got.total, f.sum(0), rtol=1e-12)
    np.testing.assert_allclose(got.outer, f.T @ f, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.cov(), np.cov(f, rowvar=False), rtol=1e-10, atol=1e-12)


def test_every_row_bank_keeps_rows_logits_and_labels_in_order():
    x, z = _rows(20, 4, 1), _rows(20, 3, 2)
    acc = FeatureAccumulator(4, keep_features=True, keep_logits=True, logits_dim=3)
    for s in (0, 8, 16):
        acc.add(x[s:s + 8], z[s:s + 8], np.arange(s, min(s + 8, 20)))
    out = acc.finish("t")
    np.testing.assert_array_equal(out.features, x.numpy())
    np.testing.assert_array_equal(out.logits, z.numpy())
    np.testing.assert_array_equal(out.labels, np.arange(20))


def test_reservoir_does_not_depend_on_batching_and_follows_the_seed():
    x = _rows(250, 5, 3)

    def bank(seed, cuts):
        acc = FeatureAccumulator(5, keep_features=True, capacity=40, seed=seed)
        start = 0
        for size in cuts:
            acc.add(x[start:start + size])
            start += size
        return acc.finish("t").features

    a = bank(0, [250])
    np.testing.assert_array_equal(a, bank(0, [1, 17, 100, 132]))
    assert a.shape == (40, 5)
    assert not np.array_equal(a, bank(1, [250]))
    rows = {tuple(r) for r in x.numpy()}
    assert all(tuple(r) in rows for r in a)  # the reservoir holds stream rows, unchanged


def test_reservoir_is_roughly_uniform():
    """Algorithm R: every stream index is kept with probability k / N (here 10 / 200 over 60 seeds: 3 each)."""
    counts = np.zeros(200)
    ids = torch.zeros((200, 2))
    ids[:, 0] = torch.arange(200, dtype=torch.float32)
    for seed in range(60):
        acc = FeatureAccumulator(2, keep_features=True, capacity=10, seed=seed)
        for start in range(0, 200, 32):
            acc.add(ids[start:start + 32])
        counts[acc.finish("t").features[:, 0].astype(int)] += 1
    assert counts.sum() == 600
    assert counts[:100].sum() == pytest.approx(300, abs=60) and counts[100:].sum() == pytest.approx(300, abs=60)


def test_while_not_full_the_reservoir_is_the_stream():
    x = _rows(30, 3, 4)
    acc = FeatureAccumulator(3, keep_features=True, capacity=50)
    acc.add(x[:10])
    acc.add(x[10:])
    np.testing.assert_array_equal(acc.finish("t").features, x.numpy())


def test_clone_is_independent_and_state_round_trips():
    x = _rows(90, 3, 5)
    acc = FeatureAccumulator(3, keep_features=True, capacity=20, seed=7)
    acc.add(x[:60])
    twin = acc.clone()
    twin.add(x[60:])
    assert acc.n == 60 and twin.n == 90
    restored = FeatureAccumulator(3, keep_features=True, capacity=20, seed=7)
    restored.load_state_dict(acc.state_dict())
    restored.add(x[60:])
    np.testing.assert_array_equal(restored.finish("t").features, twin.finish("t").features)
    np.testing.assert_array_equal(restored.finish("t").stats.outer, twin.finish("t").stats.outer)


def test_non_finite_rows_are_named_or_refused_whole():
    x = _rows(10, 3, 6)
    x[4, 1] = float("nan")
    deferred = FeatureAccumulator(3)
    deferred.add(x[:5], first=0)
    deferred.add(x[5:], first=5)
    with pytest.raises(InputError, match=r"NaN or Inf features for images 0\.\.4"):
        deferred.finish("samples/")
    strict = FeatureAccumulator(3)
    with pytest.raises(InputError, match="1 of 10 images; the batch was not added"):
        strict.add(x, check_now=True)
    assert strict.n == 0 and float(strict.total.abs().sum()) == 0.0


def test_merge_banks_is_a_uniform_draw_over_ranks_when_over_capacity():
    a, b = np.arange(6, dtype=np.float32)[:, None], np.arange(100, 104, dtype=np.float32)[:, None]
    features, _ = merge_banks([(6, a, None), (4, b, None)], 10, capacity=20, seed=0)
    np.testing.assert_array_equal(features[:, 0], np.r_[a[:, 0], b[:, 0]])  # under capacity: rank order
    drawn, _ = merge_banks([(6, a, None), (4, b, None)], 10, capacity=5, seed=0)
    assert drawn.shape == (5, 1) and len(set(drawn[:, 0])) == 5
    assert set(drawn[:, 0]) <= set(a[:, 0]) | set(b[:, 0])


def test_every_build_is_a_new_network_owned_by_its_caller():
    """No process-wide cache hands one module to two callers (a caller that moves or mutates its network would
    change the other's)."""
    from genbench.features import build_extractor

    a, b = build_extractor("fmnist-cnn"), build_extractor("fmnist-cnn")
    assert a is not b
    with torch.no_grad():
        next(a.parameters()).add_(1.0)
    assert not torch.equal(next(a.parameters()), next(b.parameters()))


def test_listing_extractors_imports_no_network_module():
    import subprocess
    import sys

    code = ("import sys; from genbench.features import extractor_names; names = extractor_names(); "
            "assert 'inception-v3' in names and 'clip-vit-l14' in names, names; "
            "loaded = [m for m in ('genbench.features.inception', 'genbench.features.clip', 'genbench.features.dinov2') "
            "if m in sys.modules]; assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True)

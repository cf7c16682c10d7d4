"""FLD and fld_gap against a plain implementation of the authors' algorithm (marcojira/fld, not on PyPI).

The reference below follows ``fld/metrics/FLD.py`` and ``fld/MoG.py`` step by step, in full matrices, with
its random draws from numpy's global state as the authors' code does (genbench draws the same sequence
from ``RandomState(seed)``). Both run float32 torch with Adam over 50 epochs, so the agreement is to float32
rounding carried through the optimisation: 1e-4 relative (absolute 1e-3 on values of order 1..100).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from genbench.errors import ConfigError  # noqa: E402
from genbench.metrics.fld import fld  # noqa: E402

pytestmark = pytest.mark.reference


def _ref_fit(mus, x, d):
    log_s = torch.zeros(len(mus), requires_grad=True)
    origin_s = torch.tensor(0.0, requires_grad=True)
    mean_x = x.mean(dim=0, keepdim=True)
    opt = torch.optim.Adam([log_s, origin_s], lr=0.5)
    x = x[np.random.choice(len(x), len(x), replace=False)]
    dists = torch.cdist(x, mus) ** 2
    log_s.data = ((dists.min(dim=0).values + 1e-3) / d).log()
    c = (d / 2) * np.log(2 * np.pi)
    for _ in range(50):
        for i, batch in enumerate(x.split(10000)):
            opt.zero_grad()
            dd = dists[i * 10000:(i + 1) * 10000]
            pair = -0.5 * dd / torch.exp(log_s) - (d / 2) * log_s - c - np.log(len(mus))
            od = 0.81 * torch.cdist(batch, mean_x) ** 2
            orig = -0.5 * od / torch.exp(origin_s) - (d / 2) * origin_s - c
            loss = -torch.logsumexp(torch.cat([pair, orig], 1), 1).mean() / d
            loss.backward()
            opt.step()
            with torch.no_grad():
                log_s.data = log_s.clamp(-40, 20).data
    return log_s.detach()


def _ref_nll(mus, log_s, x, d):
    c = (d / 2) * np.log(2 * np.pi)
    pair = -0.5 * torch.cdist(x, mus) ** 2 / torch.exp(log_s) - (d / 2) * log_s - c - np.log(len(mus))
    return (-torch.logsumexp(pair, 1) / d).mean().item()


def _reference(train, test, gen, seed):
    np.random.seed(seed)
    tr, te, ge = (torch.tensor(a, dtype=torch.float32) for a in (train, test, gen))
    if len(ge) > 10000:
        ge = ge[np.random.choice(len(ge), 10000, replace=False)]
    m, s = te.mean(0), te.std(0)
    tr, te, ge = (tr - m) / s, (te - m) / s, (ge - m) / s
    d = tr.shape[1]
    log_s = _ref_fit(ge, tr, d)
    nll_test, nll_train = _ref_nll(ge, log_s, te, d), _ref_nll(ge, log_s, tr, d)
    m2, s2 = te.mean(0), te.std(0)
    btr, bte = (tr - m2) / s2, (te - m2) / s2
    btr = btr[np.random.choice(len(btr), len(btr), replace=False)]
    split = min(len(ge), len(btr) // 2)
    base_s = _ref_fit(btr[:split], btr[split:], d)
    baseline = _ref_nll(btr[:split], base_s, bte, d)
    return 100 * (nll_test - baseline), 100 * (nll_train - nll_test)


def _sets(seed, copies=0.0):
    rng = np.random.default_rng(seed)
    train = rng.standard_normal((300, 6))
    test = rng.standard_normal((150, 6))
    gen = 1.1 * rng.standard_normal((100, 6))
    k = int(copies * len(gen))
    gen[:k] = train[:k] + 1e-3 * rng.standard_normal((k, 6))
    return train, test, gen


@pytest.mark.parametrize("copies", [0.0, 1.0])
def test_matches_the_authors_algorithm(copies: float) -> None:
    train, test, gen = _sets(0, copies)
    want_fld, want_gap = _reference(train, test, gen, seed=3)
    with pytest.warns(UserWarning) if copies else _no_warning():
        got = fld(train, test, gen, seed=3)
    assert got.fld == pytest.approx(want_fld, rel=1e-4, abs=1e-3)
    assert got.gap == pytest.approx(want_gap, rel=1e-4, abs=1e-3)
    if copies:
        assert got.gap < 0 and got.fld > 100  # copies of training points: overfit by both numbers


def test_the_uncached_chunked_route_gives_the_same_numbers(monkeypatch) -> None:
    import genbench.metrics.fld as fld_module

    train, test, gen = _sets(1)
    a = fld(train, test, gen, seed=5)
    monkeypatch.setattr(fld_module, "CHUNK_BYTES", 100 * 4 * 8 * 7)  # 7-row chunks of the 100 components
    b = fld(train, test, gen, seed=5, cache_bytes=0)
    assert b.fld == pytest.approx(a.fld, rel=1e-4, abs=1e-3)
    assert b.gap == pytest.approx(a.gap, rel=1e-4, abs=1e-3)


def test_dimensions_constant_on_the_test_set_are_left_out() -> None:
    train, test, gen = _sets(2)
    test[:, 2] = 0.0  # a dead unit on the test set
    got = fld(train, test, gen, seed=1)
    keep = [0, 1, 3, 4, 5]
    want_fld, want_gap = _reference(train[:, keep], test[:, keep], gen[:, keep], seed=1)
    assert got.dropped_dims == 1
    assert got.fld == pytest.approx(want_fld, rel=1e-4, abs=1e-3)
    assert got.gap == pytest.approx(want_gap, rel=1e-4, abs=1e-3)
    with pytest.raises(ConfigError, match="every test feature dimension"):
        fld(train, np.zeros_like(test), gen)


class _no_warning:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        return False

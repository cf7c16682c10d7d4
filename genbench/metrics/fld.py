"""Feature Likelihood Divergence, FLD, and its generalization gap (Jiralerspong et al., NeurIPS 2023).

As the authors' code (marcojira/fld, ``fld/metrics/FLD.py`` and ``fld/MoG.py``) computes it:

1. At most ``gen_size`` = 10000 generated samples (a random subset without replacement beyond that).
2. All features are standardised by the *test* set's per-dimension mean and (unbiased) std.
3. A mixture of isotropic Gaussians, one per generated sample (means = the samples, equal weights 1/m),
   with variances sigma_j^2 = exp(s_j); s_j starts at log((min_i |x_i - g_j|^2 + 1e-3) / d) over the
   training points x_i.
4. The s_j are fitted by Adam (lr 0.5, 50 epochs over the shuffled training set in batches of 10000) to
   the mean log-likelihood per dimension of the training points, under the mixture plus one "origin"
   component at the training mean (distances scaled by 0.9^2, its own log-variance starting at 0, not part
   of the model afterwards); after each step s_j is clamped to [-40, 20].
5. nll(X) = -(1/d) mean_x log p(x) under the fitted mixture (no origin component).
6. Baseline: the same fit with the means on a random half of the (shuffled) training set (at most m
   points) fitted to the rest; baseline_nll = nll(test) under it.
7. FLD = 100 (nll(test) - baseline_nll), lower is better (about 0 for a good model; > 1000 warns of a
   memorized set); fld_gap = 100 (nll(train) - nll(test)), the more negative the more overfit (< -1000
   warns).

The authors' random draws go through numpy's global state (subsets and shuffles); genbench draws them from
``np.random.RandomState(seed)`` in the same order (generated subset, training shuffle of the fit, training
shuffle of the baseline, the baseline fit's shuffle), and computes in float32 torch as they do. One
difference: the authors compute the gap with a second, separately fitted mixture (another ``FLD`` object);
genbench takes both numbers from one fit (the same estimator, one random shuffle fewer). Memory: the
training-to-means squared distances are cached only when they fit ``cache_bytes`` (the authors cache them
whole); otherwise each batch's distances are recomputed; each batch's loss and gradient are accumulated
over row chunks (the same gradient, other rounding), so the temporaries stay near ``CHUNK_BYTES``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .knn import as_features, check_same_width

GEN_SIZE = 10000
LR = 0.5
EPOCHS = 50
BATCH = 10000
ORIGIN_SHRINK = 0.9**2
LOG_SIGMA_RANGE = (-40.0, 20.0)
#: Bytes of cached float32 training-to-means distances allowed (beyond it: recomputed per batch).
CACHE_BYTES = 1024**3
#: Budget for one chunk's float32 temporaries of the likelihood and its gradient.
CHUNK_BYTES = 256 * 1024**2


def _sq_dists(x, mus):
    import torch

    return (torch.cdist(x, mus) ** 2).detach()


class _Mixture:
    """Isotropic Gaussians at ``mus`` [m, d] (float32 torch) with fitted log-variances."""

    def __init__(self, mus, cache_bytes: int) -> None:
        import torch

        self.mus = mus
        self.m, self.d = mus.shape
        self.cache_bytes = cache_bytes
        self.log_sigmas = torch.zeros(self.m, requires_grad=True)
        self.origin_log_sigma = torch.tensor(0.0, requires_grad=True)

    def _pairwise(self, dists, log_sigmas):
        import torch

        out = (-0.5 * dists) / torch.exp(log_sigmas)
        out -= (self.d / 2) * log_sigmas
        out -= (self.d / 2) * np.log(2 * np.pi)
        return out

    def fit(self, x, rng: np.random.RandomState, on_epoch=None) -> None:
        import torch

        mean_x = x.mean(dim=0).unsqueeze(0)
        optim = torch.optim.Adam([self.log_sigmas, self.origin_log_sigma], lr=LR)
        x = x[rng.choice(len(x), len(x), replace=False)]
        cached = _sq_dists(x, self.mus) if len(x) * self.m * 4 <= self.cache_bytes else None
        if cached is not None:
            min_d = cached.min(dim=0).values
        else:
            min_d = torch.full((self.m,), math.inf)
            for batch in x.split(self._chunk_rows()):
                min_d = torch.minimum(min_d, _sq_dists(batch, self.mus).min(dim=0).values)
        self.log_sigmas.data = ((min_d + 1e-3) / self.d).log()
        rows = self._chunk_rows()
        for _ in range(EPOCHS):
            for i, batch in enumerate(x.split(BATCH)):
                optim.zero_grad()
                dists = cached[i * BATCH:(i + 1) * BATCH] if cached is not None else None
                # The batch's loss -mean(lls)/d, its gradient accumulated over row chunks (the same gradient;
                # memory stays at a chunk x m block instead of the authors' batch x m).
                for start in range(0, len(batch), rows):
                    part = batch[start:start + rows]
                    d_part = dists[start:start + rows] if dists is not None else _sq_dists(part, self.mus)
                    pairwise = self._pairwise(d_part, self.log_sigmas) - np.log(self.m)
                    origin = self._pairwise(ORIGIN_SHRINK * _sq_dists(part, mean_x), self.origin_log_sigma)
                    lls = torch.logsumexp(torch.cat([pairwise, origin], dim=1), dim=1)
                    (-lls.sum() / (len(batch) * self.d)).backward()
                optim.step()
                with torch.no_grad():
                    self.log_sigmas.data = self.log_sigmas.clamp(*LOG_SIGMA_RANGE).data
            if on_epoch is not None:
                on_epoch(1)
        self.log_sigmas = self.log_sigmas.detach()

    def _chunk_rows(self) -> int:
        """Rows per chunk: about CHUNK_BYTES of float32 [rows, m] temporaries (a handful live at once)."""
        return max(1, CHUNK_BYTES // (self.m * 4 * 8))

    def nll(self, x) -> float:
        """-(1/d) mean log-likelihood of x [n, d] (float64 accumulation of float32 per-point values)."""
        import torch

        total = 0.0
        with torch.no_grad():
            for batch in x.split(self._chunk_rows()):
                lls = torch.logsumexp(self._pairwise(_sq_dists(batch, self.mus), self.log_sigmas) - np.log(self.m), dim=1)
                total += float((-lls / self.d).double().sum())
        return total / len(x)


@dataclass(frozen=True)
class FLDResult:
    fld: float
    gap: float
    nll_test: float
    nll_train: float
    baseline_nll: float
    n_generated_used: int
    warnings: tuple[str, ...] = ()
    #: Feature dimensions left out because they are constant on the test set (their std is 0).
    dropped_dims: int = 0

    def to_dict(self) -> dict:
        return {**self.__dict__, "warnings": list(self.warnings)}


def min_samples() -> dict[str, int]:
    """The fewest samples per role: 2 train (halves for the baseline), 2 test (a std), 1 generated."""
    return {"train": 2, "test": 2, "generated": 1}


def fld(train: np.ndarray, test: np.ndarray, generated: np.ndarray, *, seed: int = 0, gen_size: int = GEN_SIZE,
        cache_bytes: int = CACHE_BYTES, on_epoch=None) -> FLDResult:
    """FLD and fld_gap of generated [m, D] given train [l, D] and test [n, D] features (module docstring).

    Dimensions constant on the test set (std 0, e.g. dead ReLU units; the authors' code would divide by 0) are left
    out and counted in ``dropped_dims``. Raises ConfigError for too few samples or when every dimension is; InputError
    for malformed or mismatched features. ``on_epoch(1)`` after each of the 2 x 50 epochs.
    """
    import torch

    tr = as_features(train, "training features (--train)")
    te = as_features(test, "test features (--test)")
    ge = as_features(generated, "generated features")
    check_same_width(**{"training features (--train)": tr, "test features (--test)": te, "generated features": ge})
    need = min_samples()
    for role, arr in (("train", tr), ("test", te), ("generated", ge)):
        if len(arr) < need[role]:
            raise ConfigError(f"FLD needs at least {need[role]} {role} samples; got {len(arr)}")
    rng = np.random.RandomState(seed)
    torch.manual_seed(seed)  # not used by the computation; keeps any torch default draw reproducible
    if len(ge) > gen_size:
        ge = ge[rng.choice(len(ge), gen_size, replace=False)]
    t_tr, t_te, t_ge = (torch.from_numpy(a.astype(np.float32)) for a in (tr, te, ge))
    mean, std = t_te.mean(dim=0), t_te.std(dim=0)
    constant = ~(std > 0)
    dropped = int(constant.sum())
    if dropped == len(std):
        raise ConfigError("FLD standardises by the test set's per-dimension std, but every test feature dimension "
                          "is constant")
    if dropped:  # a dead unit (constant on the test set) cannot be standardised: the authors' code divides by 0
        keep = ~constant
        t_tr, t_te, t_ge, mean, std = t_tr[:, keep], t_te[:, keep], t_ge[:, keep], mean[keep], std[keep]
    t_tr, t_te, t_ge = ((a - mean) / std for a in (t_tr, t_te, t_ge))

    mog = _Mixture(t_ge, cache_bytes)
    mog.fit(t_tr, rng, on_epoch)
    nll_test, nll_train = mog.nll(t_te), mog.nll(t_tr)

    # The authors' baseline standardises its (already standardised) inputs once more by the test set.
    mean2, std2 = t_te.mean(dim=0), t_te.std(dim=0)
    b_tr, b_te = (t_tr - mean2) / std2, (t_te - mean2) / std2
    shuffled = b_tr[rng.choice(len(b_tr), len(b_tr), replace=False)]
    split = min(len(t_ge), len(b_tr) // 2)
    base = _Mixture(shuffled[:split], cache_bytes)
    base.fit(shuffled[split:], rng, on_epoch)
    baseline = base.nll(b_te)

    value, gap = 100.0 * (nll_test - baseline), 100.0 * (nll_train - nll_test)
    notes = []
    if value > 1000:
        notes.append("very high FLD: the generated data is likely memorized")
    if gap < -1000:
        notes.append("very negative FLD gap: the generated data is likely memorized")
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return FLDResult(value, gap, nll_test, nll_train, baseline, len(ge), tuple(notes), dropped)

"""Inception Score (and its domain-classifier variants) from classifier logits.

For each split s of the samples: IS_s = exp(mean_i KL(p(y|x_i) || p_s(y))), with
p_s(y) the split's mean prediction; report mean and (population) std over splits,
as the original code does. Softmax and logs are taken in float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, InputError


@dataclass(frozen=True)
class ScoreSpread:
    mean: float
    std: float


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _checked_logits(logits: np.ndarray) -> np.ndarray:
    """float64 logits [N, K]; InputError for another shape or non-finite values."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise InputError(f"logits: expected shape [N, K], got {logits.shape}")
    if not np.isfinite(logits).all():
        raise InputError("logits contain NaN or Inf values")
    return logits


def _split_scores(logits: np.ndarray, parts: list[slice]) -> ScoreSpread:
    """Mean and population std over ``parts`` (row slices of float64 ``logits`` [N, K]) of exp(mean KL(p(y|x) ||
    p_part(y)))."""
    from scipy.special import logsumexp  # scipy.special costs 30 ms to import: only when IS is computed

    log_p = _log_softmax(logits)
    p = np.exp(log_p)
    scores = []
    for part in parts:
        # The log of the mean probability, taken in log space: a tiny p(y|x) whose mean would underflow
        # to 0 keeps a finite log. Every log here is finite, so a p(y|x) that underflowed to 0 contributes
        # 0 * finite = 0 (the limit of p log p).
        log_marginal = logsumexp(log_p[part], axis=0) - np.log(part.stop - part.start)
        kl = (p[part] * (log_p[part] - log_marginal)).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    scores_arr = np.asarray(scores)
    return ScoreSpread(float(scores_arr.mean()), float(scores_arr.std()))


def inception_score(logits: np.ndarray, splits: int = 10, seed: int | None = 0) -> ScoreSpread:
    """IS of logits [N, K] over ``splits`` contiguous parts [i*N//S, (i+1)*N//S).

    With a ``seed`` the samples are permuted (seeded) before splitting; with
    ``seed=None`` the splits are contiguous. Raises ConfigError when N < splits.
    """
    logits = _checked_logits(logits)
    n = logits.shape[0]
    if splits < 1 or n < splits:
        raise ConfigError(f"IS needs at least as many samples as splits (--is-splits={splits}); got {n} samples")
    if seed is not None:
        logits = logits[np.random.default_rng(seed).permutation(n)]
    # the original code's split boundaries
    return _split_scores(logits, [slice(i * n // splits, (i + 1) * n // splits) for i in range(splits)])


def inception_score_split_size(logits: np.ndarray, split_size: int) -> tuple[ScoreSpread, int]:
    """IS of logits [N, K] over contiguous, unshuffled splits of ``split_size`` (the last one shorter when N is no
    multiple of it), ADM's rule (``compute_inception_score(..., split_size=5000)``): (mean and population std over
    the splits, the number of splits). Raises ConfigError when N < split_size.
    """
    logits = _checked_logits(logits)
    n = logits.shape[0]
    if split_size < 1 or n < split_size:
        raise ConfigError(f"IS with splits of {split_size} images (--is-split-size) needs at least {split_size} "
                          f"generated samples; got {n}")
    parts = [slice(start, min(start + split_size, n)) for start in range(0, n, split_size)]
    return _split_scores(logits, parts), len(parts)

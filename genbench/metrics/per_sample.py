"""Per-sample diagnostics of a generated set: one row per generated image, as arrays.

Columns (each an array of length M, the generated count):

- ``index``: the generated sample's position; ``source``: its name (file name where the input has files,
  else ``#<index>``);
- ``realism``, ``rarity``: as :mod:`.realism` computes them against the reference (rarity 0: outside
  every reference k-NN ball);
- ``nearest_train_distance``, ``nearest_train_index`` (and ``nearest_train_source`` where the training
  input has files): the nearest training sample (the ``--train`` input where given, else the reference),
  on exact distances;
- ``authentic``: Alaa et al.'s authenticity flag against that training set (False: closer to its nearest
  training sample than that sample is to its own neighbour, the copy-like case);
- ``class_confidence``, ``predicted_class``: the largest softmax probability of the extractor's logits and
  its class, where the generated input has logits (absent otherwise).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..config import MetricOptions
from ..errors import ConfigError
from .alpha_precision import authenticity
from .realism import sample_scores

if TYPE_CHECKING:
    from .inputs import Evaluated


def _names(ev: Evaluated, n: int) -> np.ndarray:
    if ev.files is not None and len(ev.files) == n:
        return np.array([str(f) for f in ev.files], dtype=object)
    return np.array([f"#{i}" for i in range(n)], dtype=object)


def softmax_confidence(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max softmax probability [N] float64, argmax class [N] int64) of logits [N, K], computed stably."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p.max(axis=1), p.argmax(axis=1)


def per_sample_arrays(gen: Evaluated, ref: Evaluated, opt: MetricOptions, train: Evaluated | None = None
                      ) -> dict[str, np.ndarray]:
    """The per-sample columns (module docstring) for generated ``gen`` against ``ref`` (and ``train``)."""
    if gen.features is None or ref.features is None:
        raise ConfigError("--per-sample needs per-sample features of the generated and reference inputs; pass images "
                          "or feature files written by `genbench extract` (a statistics file has none)")
    t = train if train is not None else ref
    if t.features is None:
        raise ConfigError(f"--per-sample needs per-sample features of the {t.what}")
    m = len(gen.features)
    scores = sample_scores(ref.features, gen.features, realism_k=opt.realism_k, rarity_k=opt.rarity_k)
    auth = authenticity(t.features, gen.features)
    out: dict[str, np.ndarray] = {
        "index": np.arange(m), "source": _names(gen, m), "realism": scores.realism, "rarity": scores.rarity,
        "nearest_train_distance": auth.nearest_train_distance, "nearest_train_index": auth.nearest_train_index,
    }
    if t.files is not None and len(t.files) == len(t.features):
        out["nearest_train_source"] = _names(t, len(t.features))[auth.nearest_train_index]
    out["authentic"] = auth.authentic
    if gen.logits is not None:
        out["class_confidence"], out["predicted_class"] = softmax_confidence(gen.logits)
    return out

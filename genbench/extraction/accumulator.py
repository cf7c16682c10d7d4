"""The one streaming accumulator: exact float64 sums of a feature stream and a bank of its per-sample rows.

Every route from images to numbers feeds one of these: the chunked extraction loop
(:func:`genbench.extraction.engine.iter_chunks`, one accumulator per chunk, every row kept in order) and the
training-loop :class:`genbench.Evaluator` (one accumulator for the whole stream, a bounded seeded reservoir).

State
-----
* ``n``, ``total`` float64 [d], ``outer`` float64 [d, d]: the :class:`~genbench.stats.feature_stats.FeatureStats`
  sums, kept on the accumulator's device (CUDA sums never leave the device until :meth:`finish`).
* The bank: per-sample float32 features and/or logits (and int64 labels where given). ``capacity=None`` keeps every
  row in stream order (as host copies, asynchronous from CUDA); ``capacity=k`` keeps a uniform reservoir of at most
  ``k`` rows on the device (Algorithm R, Vitter 1985): the first ``k`` rows fill it in order; row ``i`` (0-based,
  ``i >= k``) draws one double ``u`` from ``numpy.random.default_rng([seed, rank])`` and replaces slot
  ``floor(u * (i + 1))`` when that is below ``k`` (within one batch a later row wins a slot hit twice). So the
  reservoir depends on the seed and the row order only, never on how the stream was cut into batches.
* Finiteness flags, one per added batch, checked on the device and read once in :meth:`finish` (or at once with
  ``add(..., check_now=True)``, which refuses the batch before adding anything).

One cross-rank reduction (:meth:`reduce`): the sums and the non-finite count are all-reduced as one float64 tensor;
banks are gathered and concatenated in rank order while they hold at most ``capacity`` rows together, else
``capacity`` rows are drawn without replacement (multivariate hypergeometric over the ranks' stream counts, then a
uniform subset of each rank's bank; ``numpy.random.default_rng([seed, n_total])``), a uniform sample of the union.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, InputError
from ..stats.feature_stats import FeatureStats

STATE_FORMAT = 1


@dataclass
class Accumulated:
    """What an accumulator holds, on the host: statistics and the bank's rows (None where not kept)."""

    stats: FeatureStats
    features: np.ndarray | None = None  # float32 [K, d]
    logits: np.ndarray | None = None  # float32 [K, C]
    labels: np.ndarray | None = None  # int64 [K]

    @property
    def kept(self) -> int:
        held = self.features if self.features is not None else self.logits
        return 0 if held is None else len(held)


class FeatureAccumulator:
    """Sums and bank of one feature stream; see the module docstring.

    ``dim``: feature width; ``device``: where sums (and a reservoir) live; ``keep_features``/``keep_logits``: what the
    bank keeps (``logits_dim`` is needed for logits); ``capacity``: None (every row) or the reservoir size;
    ``seed``/``rank``: the reservoir's generator.
    """

    def __init__(self, dim: int, device: torch.device | str = "cpu", *, keep_features: bool = False,
                 keep_logits: bool = False, logits_dim: int | None = None, capacity: int | None = None,
                 seed: int = 0, rank: int = 0) -> None:
        if keep_logits and logits_dim is None:
            raise ConfigError("an accumulator that keeps logits needs their width (logits_dim)")
        if capacity is not None and capacity < 1:
            raise ConfigError(f"capacity must be None or >= 1, got {capacity}")
        self.dim, self.device = int(dim), torch.device(device)
        self.keep_features, self.keep_logits, self.logits_dim = keep_features, keep_logits, logits_dim
        self.capacity, self.seed, self.rank = capacity, seed, rank
        self.reset()

    # ------------------------------------------------------------------------- state

    def reset(self) -> None:
        """Forget every row: zero sums, an empty bank, a fresh reservoir generator."""
        d, dev = self.dim, self.device
        self.n = 0
        self.total = torch.zeros(d, dtype=torch.float64, device=dev)
        self.outer = torch.zeros((d, d), dtype=torch.float64, device=dev)
        self.nonfinite = torch.zeros((), dtype=torch.float64, device=dev)  # bad rows (read in finish/check)
        self._checks: list[tuple[int, int, str, torch.Tensor]] = []  # (first, last, what, bad-row count)
        self._host: dict[str, list] = {"features": [], "logits": [], "labels": []}  # capacity None
        self.res_features: torch.Tensor | None = None  # capacity k: on the device
        self.res_logits: torch.Tensor | None = None
        if self.capacity is not None:
            if self.keep_features:
                self.res_features = torch.empty((0, d), dtype=torch.float32, device=dev)
            if self.keep_logits:
                assert self.logits_dim is not None  # checked in __init__
                self.res_logits = torch.empty((0, self.logits_dim), dtype=torch.float32, device=dev)
        self.rng = np.random.default_rng([self.seed, self.rank])

    @property
    def keeps_rows(self) -> bool:
        return self.keep_features or self.keep_logits

    @property
    def kept(self) -> int:
        """Rows in the bank."""
        if self.capacity is None:
            return sum(len(x) for x in self._host["features" if self.keep_features else "logits"])
        held = self.res_features if self.res_features is not None else self.res_logits
        return 0 if held is None else int(held.shape[0])

    def clone(self) -> FeatureAccumulator:
        """An independent copy (sums, bank, generator state)."""
        other = FeatureAccumulator.__new__(FeatureAccumulator)
        other.__dict__.update(self.__dict__)
        other.total, other.outer, other.nonfinite = self.total.clone(), self.outer.clone(), self.nonfinite.clone()
        other._checks = list(self._checks)
        other._host = {k: list(v) for k, v in self._host.items()}
        other.res_features = None if self.res_features is None else self.res_features.clone()
        other.res_logits = None if self.res_logits is None else self.res_logits.clone()
        other.rng = np.random.default_rng()
        other.rng.bit_generator.state = self.rng.bit_generator.state
        return other

    # ------------------------------------------------------------------------- adding

    def add(self, features: torch.Tensor, logits: torch.Tensor | None = None, labels: np.ndarray | None = None, *,
            first: int | None = None, check_now: bool = False, where: str = "features") -> None:
        """Add a batch: ``features`` [B, d] (any float dtype, any device; summed in float64 on this device),
        ``logits`` [B, C] where the bank keeps them, ``labels`` int [B] (kept with every-row banks).

        ``first``: the stream index of the batch's first row (default: rows so far), used in messages.
        ``check_now``: read the finiteness flag at once and raise InputError without adding anything.
        """
        count = int(features.shape[0])
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise InputError(f"{where}: expected features of shape [B, {self.dim}], got {tuple(features.shape)}")
        if self.keep_logits and logits is None:
            raise InputError(f"{where}: no logits, although the metrics need them")
        start = self.n if first is None else first
        f64 = features.detach().to(self.device, torch.float64, non_blocking=True)
        checks = [("features", (~torch.isfinite(f64)).any(dim=1).sum())]
        logs = None if logits is None or not self.keep_logits else logits.detach().float()
        if logs is not None:
            checks.append(("logits", (~torch.isfinite(logs)).any(dim=1).sum().to(self.device)))
        if check_now:
            bad = int(sum(int(c.item()) for _, c in checks))
            if bad:
                raise InputError(f"{where}: the extractor produced NaN or Inf features/logits for {bad} of {count} "
                                 "images; the batch was not added")
        for what, bad_rows in checks:
            self._checks.append((start, start + count - 1, what, bad_rows))
            self.nonfinite += bad_rows.to(self.device, torch.float64)
        self.total += f64.sum(dim=0)
        self.outer.addmm_(f64.T, f64)
        seen = self.n
        self.n += count
        if self.capacity is None:
            if self.keep_features:
                self._host["features"].append(_to_host(features))
            if logs is not None:
                self._host["logits"].append(_to_host(logs))
            if labels is not None:
                self._host["labels"].append(np.asarray(labels))
        elif self.keeps_rows:
            self._reservoir_add(seen, features.detach().to(self.device, torch.float32),
                                None if logs is None else logs.to(self.device))

    def _reservoir_add(self, first: int, feats: torch.Tensor, logs: torch.Tensor | None) -> None:
        assert self.capacity is not None
        b, k = feats.shape[0], self.capacity
        held = self.kept
        fill = max(0, min(b, k - held))  # rows appended in order while the reservoir is not full
        if fill:
            if self.res_features is not None:
                self.res_features = torch.cat([self.res_features, feats[:fill]])
            if self.res_logits is not None:
                assert logs is not None  # add() passes logits whenever the bank keeps them
                self.res_logits = torch.cat([self.res_logits, logs[:fill]])
        rest = b - fill
        if rest <= 0:
            return
        index = np.arange(first + fill, first + b, dtype=np.float64)  # stream indices >= capacity
        slots = np.floor(self.rng.random(rest) * (index + 1)).astype(np.int64)
        chosen = np.nonzero(slots < k)[0]
        if chosen.size == 0:
            return
        # A later row wins a slot hit twice in one batch (as one-at-a-time replacement would).
        rev_slots, rev_first = np.unique(slots[chosen][::-1], return_index=True)
        rows = chosen[::-1][rev_first] + fill
        slot_t = torch.from_numpy(rev_slots).to(self.device)
        row_t = torch.from_numpy(rows).to(self.device)
        if self.res_features is not None:
            self.res_features[slot_t] = feats[row_t]
        if self.res_logits is not None:
            assert logs is not None
            self.res_logits[slot_t] = logs[row_t]

    # ------------------------------------------------------------------------- reading

    def check(self, where: str) -> None:
        """Wait for the device once and raise InputError naming the first images with NaN or Inf values."""
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()
        if not self._checks:
            return
        counts = torch.stack([c.to(self.device) for *_, c in self._checks]).cpu().numpy()
        if counts.any():
            first, last, what, _ = self._checks[int(np.argmax(counts > 0))]
            raise InputError(f"{where}: the extractor produced NaN or Inf {what} for images {first}..{last}")

    def stats(self) -> FeatureStats:
        """The sums as FeatureStats on the host (float64 copies)."""
        return FeatureStats(self.n, self.total.cpu().numpy().copy(), self.outer.cpu().numpy().copy())

    def finish(self, where: str) -> Accumulated:
        """Check finiteness once and hand everything over as numpy arrays."""
        self.check(where)
        if self.capacity is None:
            feats = _concat(self._host["features"], (0, self.dim)) if self.keep_features else None
            logs = _concat(self._host["logits"], None) if self._host["logits"] else None
            labels = (np.concatenate(self._host["labels"]).astype(np.int64) if self._host["labels"] else None)
            return Accumulated(self.stats(), feats, logs, labels)
        return Accumulated(self.stats(),
                           None if self.res_features is None else self.res_features.cpu().numpy(),
                           None if self.res_logits is None else self.res_logits.cpu().numpy())

    def reduce(self, where: str) -> Accumulated:
        """:meth:`finish` across every rank of an initialised ``torch.distributed`` group (one all-reduce of the
        sums, one gather of the banks; see the module docstring); the same on every rank. Without a group (or with
        one rank) it is :meth:`finish`."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self.finish(where)
        d = self.dim
        flat = torch.cat([torch.tensor([float(self.n)], dtype=torch.float64, device=self.device),
                          self.nonfinite.reshape(1), self.total, self.outer.reshape(-1)])
        comm = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
        flat = flat.to(comm)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        values = flat.cpu().numpy()
        n, nonfinite = int(round(values[0])), float(values[1])
        if nonfinite > 0:
            raise InputError(f"{where}: the extractor produced NaN or Inf features/logits for {int(nonfinite)} images "
                             "on some rank")
        stats = FeatureStats(n, values[2:2 + d].copy(), values[2 + d:].reshape(d, d).copy())
        mine = self.finish(where)
        if not self.keeps_rows:
            return Accumulated(stats)
        parts: list = [None] * dist.get_world_size()
        dist.all_gather_object(parts, (self.n, mine.features, mine.logits))
        features, logits = merge_banks(parts, n, self.capacity, self.seed)
        return Accumulated(stats, features, logits)

    # ------------------------------------------------------------------------- checkpointing

    def state_dict(self) -> dict:
        """Sums, reservoir and generator state as CPU tensors (loadable with ``torch.load(weights_only=True)``)."""
        if self.capacity is None:
            raise ConfigError("only a reservoir accumulator (capacity=k) can be saved")
        if self.nonfinite.item() > 0:
            raise InputError("update(images): features of some images were NaN or Inf; call reset()")
        s = self.rng.bit_generator.state
        if s["bit_generator"] != "PCG64":  # pragma: no cover - default_rng is PCG64
            raise ConfigError(f"unexpected bit generator {s['bit_generator']}")
        words = [s["state"]["state"] >> 64, s["state"]["state"] & (2**64 - 1), s["state"]["inc"] >> 64,
                 s["state"]["inc"] & (2**64 - 1), int(s["has_uint32"]), int(s["uinteger"])]
        out = {
            "format": STATE_FORMAT, "feature_dim": self.dim, "max_samples": self.capacity, "seed": self.seed,
            "n": torch.tensor(self.n, dtype=torch.int64),
            "total": self.total.detach().cpu().clone(), "outer": self.outer.detach().cpu().clone(),
            "rng_state": torch.from_numpy(np.array(words, dtype=np.uint64).view(np.int64).copy()),
        }
        if self.res_features is not None:
            out["reservoir_features"] = self.res_features.cpu().clone()
        if self.res_logits is not None:
            out["reservoir_logits"] = self.res_logits.cpu().clone()
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output; ConfigError naming the field that does not fit."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ConfigError(f"state: not an Evaluator state_dict of format {STATE_FORMAT}")
        for key, mine in (("feature_dim", self.dim), ("max_samples", self.capacity), ("seed", self.seed)):
            if state.get(key) != mine:
                raise ConfigError(f"state: {key}={state.get(key)!r}, but this evaluator has {key}={mine!r}")
        for key, kept in (("reservoir_features", self.res_features), ("reservoir_logits", self.res_logits)):
            if (key in state) != (kept is not None):
                raise ConfigError(f"state: {key} is {'present' if key in state else 'missing'}, but this evaluator's "
                                  f"metrics {'do not ' if kept is None else ''}need it; build it with the same metrics")
        for key in ("n", "total", "outer", "rng_state") + tuple(k for k in ("reservoir_features", "reservoir_logits")
                                                             if k in state):
            if not isinstance(state.get(key), torch.Tensor):
                raise ConfigError(f"state: {key} must be a torch.Tensor as Evaluator.state_dict() writes it, got "
                                  f"{type(state.get(key)).__name__}")
        total, outer = state["total"], state["outer"]
        if tuple(total.shape) != (self.dim,) or tuple(outer.shape) != (self.dim, self.dim):
            raise ConfigError(f"state: total/outer have shapes {tuple(total.shape)}/{tuple(outer.shape)}, "
                              f"expected ({self.dim},)/({self.dim}, {self.dim})")
        if state["n"].numel() != 1 or state["rng_state"].shape != (6,) or state["rng_state"].dtype != torch.int64:
            raise ConfigError(f"state: n must be one integer and rng_state int64 [6], got n of shape "
                              f"{tuple(state['n'].shape)} and rng_state {state['rng_state'].dtype} "
                              f"{tuple(state['rng_state'].shape)}")
        n = int(state["n"])
        if n < 0:
            raise ConfigError(f"state: n={n} is negative")
        assert self.capacity is not None  # a reservoir accumulator (the format check above)
        widths = {"reservoir_features": self.dim, "reservoir_logits": self.logits_dim}
        for key in ("reservoir_features", "reservoir_logits"):
            if key in state and tuple(state[key].shape) != (min(n, self.capacity), widths[key]):
                raise ConfigError(f"state: {key} has shape {tuple(state[key].shape)}, expected "
                                  f"({min(n, self.capacity)}, {widths[key]}) for n={n} and max_samples="
                                  f"{self.capacity}")
        words = [int(w) for w in np.asarray(state["rng_state"].cpu().numpy(), dtype=np.int64).view(np.uint64)]
        rng = np.random.default_rng()
        rng.bit_generator.state = {"bit_generator": "PCG64",
                                   "state": {"state": (words[0] << 64) | words[1], "inc": (words[2] << 64) | words[3]},
                                   "has_uint32": words[4], "uinteger": words[5]}
        self.reset()
        self.n = n
        self.total = total.to(self.device, torch.float64).clone()
        self.outer = outer.to(self.device, torch.float64).clone()
        if self.res_features is not None:
            self.res_features = state["reservoir_features"].to(self.device, torch.float32).clone()
        if self.res_logits is not None:
            self.res_logits = state["reservoir_logits"].to(self.device, torch.float32).clone()
        self.rng = rng


def merge_banks(parts: list, n_total: int, capacity: int | None, seed: int,
                ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """One bank from the ranks' ``(stream count, features, logits)``, identical on every rank (module docstring)."""
    counts = [int(c) for c, _, _ in parts]
    held = [len(f if f is not None else g) for _, f, g in parts]
    if capacity is None or sum(held) <= capacity:
        take = [np.arange(h) for h in held]
    else:
        rng = np.random.default_rng([seed, n_total])
        per_rank = rng.multivariate_hypergeometric(counts, capacity)
        take = [np.sort(rng.choice(h, size=int(m), replace=False)) for h, m in zip(held, per_rank)]
    out: list[np.ndarray | None] = []
    for i in (1, 2):
        if parts[0][i] is None:
            out.append(None)
        else:
            out.append(np.concatenate([p[i][t] for p, t in zip(parts, take)]).astype(np.float32, copy=False))
    return out[0], out[1]


def _to_host(x: torch.Tensor) -> torch.Tensor:
    """float32 copy on the host: asynchronous (into pinned memory) from CUDA, a view on the CPU."""
    x = x.detach().float()
    if x.device.type != "cuda":
        return x
    host = torch.empty(x.shape, dtype=torch.float32, pin_memory=True)
    host.copy_(x, non_blocking=True)
    return host


def _concat(parts: list[torch.Tensor], empty_shape: tuple[int, int] | None) -> np.ndarray | None:
    if not parts:
        return None if empty_shape is None else np.zeros(empty_shape, dtype=np.float32)
    return np.concatenate([p.numpy() for p in parts]).astype(np.float32, copy=False)

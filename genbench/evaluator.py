"""A stateful, streaming evaluator for training loops.

    >>> ev = genbench.Evaluator("fashion-mnist:train", metrics=["fd_fmnist"], device="cuda")
    >>> for step, batch in enumerate(loader):
    ...     ...
    ...     if step % 1000 == 0:
    ...         ev.reset()
    ...         for _ in range(20):
    ...             ev.update(generator.sample(256))   # uint8 or float in [0, 1]; stays on the GPU
    ...         print(ev.compute().value("fd_fmnist"))

The reference (anything :func:`genbench.score` accepts: a reference id, a statistics or feature file, a
folder, an array) is resolved and, where it is images, extracted once, through the functions of
:mod:`genbench.evaluate` (``open_input``, ``choose_extractor``, ``prepare``, ``extract_source``,
``resolve_metrics``); the network is built once and stays on its device.

State of the generated side
---------------------------
* Exact float64 sums ``n``, ``total`` [d] and ``outer`` [d, d] (the :class:`~genbench.stats.feature_stats.
  FeatureStats` convention) kept on the evaluator's device, so FD over a stream equals FD over the same
  images in one pass up to float64 rounding, however the stream is split into ``update()`` calls.
* Only for metrics that need per-sample features or logits (KID, precision/recall/density/coverage, IS,
  the ``-infinity`` variants, or ``bootstrap`` intervals): a reservoir of at most ``max_samples`` rows of
  features and/or logits, also on the device. With only FD requested no per-sample row is kept (memory
  is O(d^2), flat in the number of images).

Network batches: images are sent through the network in batches of exactly ``batch_size`` counted from
the first image since the last reset (the same batches :func:`genbench.score` forms); the up to
``batch_size - 1`` images past the last full batch wait, as uint8 on the device, for the next
``update()``. :meth:`Evaluator.compute` extracts them too, on a copy of the state, so the state it leaves
is unchanged. Float32 network outputs can depend on the batch they were computed in; with fixed batches
they do not depend on how the stream was cut into ``update()`` calls, and FD, KID and IS match
``genbench.score`` on the same images (with the same ``batch_size``) up to float64 rounding.

FD in :meth:`Evaluator.compute`: against the reference's mean, covariance and Cholesky factor, prepared at
the first call (:class:`genbench.metrics.fid.FrechetReference`); each call then costs the generated
covariance, one congruence L^T S L (two triangular products) and one symmetric eigenvalue solve, all float64
on the CPU. It equals the FD of :func:`genbench.score` (which factors the generated side) up to float64
rounding (about 1e-13 relative). ``batch_size`` defaults as in ``genbench score``:
:func:`genbench.config.default_batch_size` of the extractor (named, or the reference's) and device.

Reservoir sampling (Algorithm R, Vitter 1985): the first ``max_samples`` samples fill the reservoir in
stream order; sample ``i`` (0-based, ``i >= max_samples``) draws ``u = rng.random()`` and, when
``j = floor(u * (i + 1)) < max_samples``, replaces row ``j`` (within one batch a later sample wins a slot).
``rng = numpy.random.default_rng([seed, rank])`` (rank 0 outside torch.distributed) draws exactly one double
per sample past the first ``max_samples``, so the reservoir depends on the seed and the sample order only,
never on how the stream was cut into batches. While the stream holds at most ``max_samples`` samples the
reservoir is all of them, in order, and KID / IS equal :func:`genbench.score` on the same images.

Distributed (``torch.distributed`` initialised with world size > 1): each rank updates with its own
images; :meth:`Evaluator.compute` all-reduces one stacked float64 tensor ``[n, non-finite count, total,
outer]`` and ``all_gather_object``-s the reservoirs; every rank (also one that saw no images) must call
``compute()``, and every rank returns the same numbers. Reservoirs are concatenated in rank order when
they hold at most ``max_samples`` rows together; otherwise ``max_samples`` rows are drawn from them
without replacement (multivariate hypergeometric over the ranks' stream counts, then a uniform subset of
each rank's reservoir; ``numpy.random.default_rng([seed, n_total])``), which is a uniform sample of the
union.

Images passed to :meth:`Evaluator.update` follow :mod:`genbench.sources.convert`: ``[B, C, H, W]``,
``[B, H, W, C]`` (C = 1, 3 or 4) or ``[B, H, W]``; uint8 as is, uint16 scaled, float in [0, 1] mapped by
``round(x * 255)`` (half to even). numpy arrays go through
:func:`~genbench.sources.convert.array_to_rgb_uint8_batch`; torch tensors are checked and converted on
their own device with the same rules (one scalar device sync for the float range check).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .config import ExtractOptions, MetricOptions
from .errors import ConfigError, InputError, ReferenceStatsError
from .evaluate import Evaluated, Pending, _check_available, extract_source, open_input, prepare
from .extraction.distributed import for_this_rank
from .metrics.fid import FrechetReference
from .metrics.registry import (
    GEN_FEATURES,
    GEN_LOGITS,
    METRICS,
    REF_FEATURES,
    plan_scope,
    preflight_metrics,
    resolve_metrics,
)
from .results.history import git_commit, utc_now
from .results.provenance import build_provenance
from .results.records import ScoreResult
from .sources.convert import array_to_rgb_uint8_batch, infer_layout
from .stats.feature_stats import FeatureStats

STATE_FORMAT = 1


class IncompatibleReferenceError(ConfigError, ReferenceStatsError):
    """The reference was built under other settings than the evaluator's extractor (a ConfigError and a
    ReferenceStatsError, so code catching either of them sees it)."""


def _world() -> tuple[int, int]:
    """(rank, world size) of an initialised default process group, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Evaluator:
    """Streaming metrics of generated images against one fixed reference.

    ``reference``: anything :func:`genbench.score` takes as reference. ``metrics``: names as in
    :func:`genbench.score` (default: FD, IS where the extractor has logits, KID where the reference has
    features). ``extractor``/``weights``/``preprocessing``: as in score (default: follow the reference).
    ``device``: where the network and the running sums live (default ``"cpu"``; under torchrun ``cuda``
    becomes ``cuda:LOCAL_RANK``). ``seed``: seed of the reservoir and, unless ``metric_options`` is given,
    of the metrics. ``max_samples``: reservoir rows kept for KID / PRDC / IS. ``batch_size``: the most
    images sent through the network at once (larger ``update()`` batches are cut; also the reference's
    extraction batch; default: :func:`genbench.config.default_batch_size` of the extractor and device, as
    ``genbench score``).
    """

    def __init__(
        self,
        reference: Any,
        metrics: list[str] | None = None,
        extractor: str | None = None,
        device: str | None = None,
        seed: int = 0,
        max_samples: int = 10_000,
        metric_options: MetricOptions | None = None,
        *,
        weights: str | None = None,
        preprocessing: str | None = None,
        batch_size: int | None = None,
        workers: int = 0,
        data_dir: str | None = None,
        progress: bool = False,
        cache: bool = True,
        precision: str = "float32",
        allow_unverified_weights: bool = False,
    ) -> None:
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 2:
            raise ConfigError(f"max_samples must be an integer >= 2, got {max_samples!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
        if metric_options is not None and not isinstance(metric_options, MetricOptions):
            raise ConfigError("metric_options must be a genbench.config.MetricOptions, got "
                              f"{type(metric_options).__name__}")
        given = ExtractOptions(extractor, weights, preprocessing, batch_size, device or "cpu", workers, data_dir,
                               progress, cache, precision, allow_unverified_weights)
        self.xo = for_this_rank(given)
        self.mo = metric_options if metric_options is not None else MetricOptions(seed=seed)
        self.seed, self.max_samples = seed, max_samples

        ref_in = open_input(reference, "reference", self.xo.extractor, self.xo.data_dir,
                            preprocessing=self.xo.preprocessing)
        try:  # the extractor by the one rule (genbench.evaluate.choose_extractor), checked against the reference
            ready = prepare([ref_in], self.xo, [reference], build=True)
        except ReferenceStatsError as exc:
            raise IncompatibleReferenceError(
                f"reference: {exc} (pass extractor=/preprocessing= matching the reference, or another reference)"
            ) from None
        name = ready.name
        self.xo = ready.options  # an unset batch size: this extractor's default
        assert ready.extractor is not None
        self.extractor = ready.extractor.eval()
        self.unchecked = ready.unchecked
        self.device = torch.device(self.xo.device)
        if self.device.type == "cuda":
            self.extractor.to(memory_format=torch.channels_last)  # as genbench.extraction.engine.prepare_extractor
        self.identity = self.extractor.identity().to_dict()
        self.dim = int(self.extractor.feature_dim)

        names = self.extractor.metric_names
        ref_has_features = isinstance(ref_in, Pending) or ref_in.features is not None
        if metrics is None:
            metrics = ["fd", "is"] + (["kid"] if ref_has_features else [])
            if self.extractor.logits_dim is None:
                metrics.remove("is")
        self.plan = resolve_metrics(list(metrics), names, name)
        if not self.plan:
            raise ConfigError("metrics: at least one metric is needed")
        needs = set().union(*(METRICS.get(kind).needs for _, kind in self.plan))
        # Only the reference is checked: the generated side comes through this evaluator's extractor (update()).
        _check_available(needs - {GEN_FEATURES, GEN_LOGITS}, ref_in, ref_in, self.plan)
        if GEN_LOGITS in needs and self.extractor.logits_dim is None:
            wanting = [n for n, kind in self.plan if GEN_LOGITS in METRICS.get(kind).needs]
            raise ConfigError(f"metrics {', '.join(wanting)} (metrics=) need classifier logits, but extractor "
                              f"{name} has no classifier head")
        self.keep_features = GEN_FEATURES in needs or self.mo.bootstrap > 0
        self.keep_logits = GEN_LOGITS in needs

        if isinstance(ref_in, Pending):
            if len(ref_in.source) < 2:
                raise InputError(f"reference: {ref_in.source.location or ref_in.source.kind} has "
                                 f"{len(ref_in.source)} image(s); statistics need at least 2")
            ref_in = extract_source(ref_in.source, self.extractor, self.xo, "reference",
                                    keep_features=REF_FEATURES in needs, keep_logits=False)
            if REF_FEATURES in needs and _world()[1] > 1:  # torchrun extraction gathers features to rank 0 only
                box = [ref_in.features]
                dist.broadcast_object_list(box, src=0)
                ref_in.features = box[0]
        if ref_in.n < 2:
            raise InputError(f"reference: {ref_in.description} has {ref_in.n} sample(s); statistics need at least 2")
        self.reference: Evaluated = ref_in
        self._fd_reference: FrechetReference | None = None  # built at the first compute() that needs it
        self._fd_reference_torch: Any = None  # the same on a CUDA device (genbench.metrics.fid_torch)
        self._git_commit = git_commit()  # once: a subprocess per compute() would cost a training loop time
        self.reset()

    # ------------------------------------------------------------------------- state

    def reset(self) -> None:
        """Forget every generated image (sums, reservoir, sampling generator); the reference stays."""
        d, dev = self.dim, self.device
        self._n = 0
        self._total = torch.zeros(d, dtype=torch.float64, device=dev)
        self._outer = torch.zeros((d, d), dtype=torch.float64, device=dev)
        self._nonfinite = torch.zeros((), dtype=torch.float64, device=dev)  # count of bad rows (deferred on CUDA)
        self._res_features = torch.empty((0, d), dtype=torch.float32, device=dev) if self.keep_features else None
        self._res_logits: torch.Tensor | None = None
        if self.keep_logits:
            assert self.extractor.logits_dim is not None  # __init__ refuses logits metrics without a classifier head
            self._res_logits = torch.empty((0, self.extractor.logits_dim), dtype=torch.float32, device=dev)
        self._rng = np.random.default_rng([self.seed, _world()[0]])
        self._pending: torch.Tensor | None = None  # uint8 [p < batch_size, 3, H, W] not yet through the network

    @property
    def num_samples(self) -> int:
        """Generated images given to this process since the last reset (extracted or waiting for a full batch)."""
        return self._n + (0 if self._pending is None else int(self._pending.shape[0]))

    @property
    def reservoir_size(self) -> int:
        """Rows held in this process's reservoir (0 when only FD-type metrics are asked for)."""
        held = self._res_features if self._res_features is not None else self._res_logits
        return 0 if held is None else int(held.shape[0])

    def state_dict(self) -> dict:
        """Running sums, reservoir and sampling-generator state as plain tensors (CPU) and scalars; loadable
        with ``torch.load(..., weights_only=True)``. Under torch.distributed each rank has its own."""
        if self._nonfinite.item() > 0:
            raise InputError("update(images): features of some images were NaN or Inf; call reset()")
        s = self._rng.bit_generator.state
        if s["bit_generator"] != "PCG64":  # pragma: no cover - default_rng is PCG64
            raise ConfigError(f"unexpected bit generator {s['bit_generator']}")
        words = [s["state"]["state"] >> 64, s["state"]["state"] & (2**64 - 1), s["state"]["inc"] >> 64,
                 s["state"]["inc"] & (2**64 - 1), int(s["has_uint32"]), int(s["uinteger"])]
        rng = torch.from_numpy(np.array(words, dtype=np.uint64).view(np.int64).copy())
        out = {
            "format": STATE_FORMAT,
            "feature_dim": self.dim,
            "weights_sha256": self.identity.get("weights_sha256"),
            "max_samples": self.max_samples,
            "seed": self.seed,
            "n": torch.tensor(self._n, dtype=torch.int64),
            "total": self._total.detach().cpu().clone(),
            "outer": self._outer.detach().cpu().clone(),
            "rng_state": rng,
        }
        if self._res_features is not None:
            out["reservoir_features"] = self._res_features.cpu().clone()
        if self._res_logits is not None:
            out["reservoir_logits"] = self._res_logits.cpu().clone()
        if self._pending is not None:
            out["pending_images"] = self._pending.cpu().clone()
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (from an evaluator with the same extractor, seed,
        max_samples and metrics needing the same per-sample rows); ConfigError naming the field otherwise."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ConfigError(f"state: not an Evaluator state_dict of format {STATE_FORMAT}")
        for key, mine in (("feature_dim", self.dim), ("weights_sha256", self.identity.get("weights_sha256")),
                          ("max_samples", self.max_samples), ("seed", self.seed)):
            if state.get(key) != mine:
                raise ConfigError(f"state: {key}={state.get(key)!r}, but this evaluator has {key}={mine!r}")
        for key, kept in (("reservoir_features", self._res_features), ("reservoir_logits", self._res_logits)):
            if (key in state) != (kept is not None):
                raise ConfigError(f"state: {key} is {'present' if key in state else 'missing'}, but this evaluator's "
                                  f"metrics {'do not ' if kept is None else ''}need it; build it with the same metrics")
        for key in ("n", "total", "outer", "rng_state") + tuple(k for k in ("reservoir_features", "reservoir_logits",
                                                                             "pending_images") if k in state):
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
        widths = {"reservoir_features": self.dim, "reservoir_logits": self.extractor.logits_dim}
        for key in ("reservoir_features", "reservoir_logits"):
            if key in state and tuple(state[key].shape) != (min(n, self.max_samples), widths[key]):
                raise ConfigError(f"state: {key} has shape {tuple(state[key].shape)}, expected "
                                  f"({min(n, self.max_samples)}, {widths[key]}) for n={n} and max_samples="
                                  f"{self.max_samples}")
        pending = state.get("pending_images")
        if pending is not None and (pending.dtype != torch.uint8 or pending.ndim != 4 or pending.shape[1] != 3
                                    or not 0 < pending.shape[0] < self.xo.batch_size):
            raise ConfigError(f"state: pending_images must be uint8 [p, 3, H, W] with 0 < p < batch_size="
                              f"{self.xo.batch_size}, got {pending.dtype} {tuple(pending.shape)}")
        words = [int(w) for w in np.asarray(state["rng_state"].cpu().numpy(), dtype=np.int64).view(np.uint64)]
        rng = np.random.default_rng()
        rng.bit_generator.state = {"bit_generator": "PCG64",
                                   "state": {"state": (words[0] << 64) | words[1], "inc": (words[2] << 64) | words[3]},
                                   "has_uint32": words[4], "uinteger": words[5]}
        self._n = n
        self._total = total.to(self.device, torch.float64).clone()
        self._outer = outer.to(self.device, torch.float64).clone()
        self._nonfinite = torch.zeros((), dtype=torch.float64, device=self.device)
        if self._res_features is not None:
            self._res_features = state["reservoir_features"].to(self.device, torch.float32).clone()
        if self._res_logits is not None:
            self._res_logits = state["reservoir_logits"].to(self.device, torch.float32).clone()
        self._rng = rng
        self._pending = None if pending is None else pending.to(self.device).clone()

    # ------------------------------------------------------------------------- update

    def update(self, images: Any, layout: str | None = None) -> None:
        """Add a batch of generated images (see the module docstring for the accepted forms)."""
        batch = self._to_uint8(images, layout)
        if batch.shape[0] == 0:
            return
        step = self.xo.batch_size
        with torch.inference_mode():
            if self._pending is not None and self._pending.shape[1:] != batch.shape[1:]:
                self._add(self._pending)  # images of another size cannot share a batch: run the waiting ones now
                self._pending = None
            if self._pending is not None:
                batch = torch.cat([self._pending, batch])
            full = batch.shape[0] // step * step
            for start in range(0, full, step):
                self._add(batch[start:start + step])
            # A copy: the caller may overwrite its tensor before the next update().
            self._pending = batch[full:].clone() if full < batch.shape[0] else None

    def _to_uint8(self, images: Any, layout: str | None) -> torch.Tensor:
        name = "images (Evaluator.update)"
        if isinstance(images, torch.Tensor):
            batch = _tensor_to_rgb_uint8(images.detach(), name, layout)
            try:
                return batch.to(self.device, non_blocking=True)
            except torch.OutOfMemoryError:
                raise
            except (RuntimeError, NotImplementedError) as exc:
                raise InputError(
                    f"{name}: the batch is on {images.device} and cannot be moved to the evaluator's device "
                    f"{self.device} ({type(exc).__name__}: {str(exc).splitlines()[0]}); pass images on {self.device} "
                    f"or build the Evaluator with device={str(images.device)!r}"
                ) from None
        if not isinstance(images, np.ndarray):
            raise InputError(f"{name}: expected a numpy array or a torch tensor, got {type(images).__name__}")
        try:
            arr = array_to_rgb_uint8_batch(images, name, layout)
        except InputError as exc:
            if np.issubdtype(images.dtype, np.floating) and "[0, 1]" in str(exc):
                raise InputError(f"{exc} {_SCALE_HINT}") from None
            raise
        return torch.from_numpy(arr).to(self.device, non_blocking=True)

    def _add(self, batch: torch.Tensor) -> None:
        out = self.extractor(batch)
        features = out["features"].detach()
        if features.ndim != 2 or features.shape != (batch.shape[0], self.dim):
            raise InputError(f"extractor {self.extractor.name} returned features of shape {tuple(features.shape)}, "
                             f"expected ({batch.shape[0]}, {self.dim})")
        logits = out.get("logits") if self.keep_logits else None
        if self.keep_logits and logits is None:
            raise InputError(f"extractor {self.extractor.name} returned no logits")
        f64 = features.to(self.device, torch.float64)
        bad = (~torch.isfinite(f64)).any(dim=1).sum()
        if logits is not None:
            bad = bad + (~torch.isfinite(logits)).any(dim=1).sum()
        if self.device.type != "cuda" and bad.item() > 0:  # immediate on the CPU; on CUDA checked in compute()
            raise InputError(f"update(images): the extractor produced NaN or Inf features/logits for {int(bad)} of "
                             f"{batch.shape[0]} images; the batch was not added")
        self._nonfinite += bad.to(torch.float64)
        self._total += f64.sum(dim=0)
        self._outer.addmm_(f64.T, f64)
        first = self._n
        self._n += batch.shape[0]
        if self._res_features is not None or self._res_logits is not None:
            feats = features.to(self.device, torch.float32)
            logs = None if logits is None else logits.detach().to(self.device, torch.float32)
            self._reservoir_add(first, feats, logs)

    def _reservoir_add(self, first: int, feats: torch.Tensor, logs: torch.Tensor | None) -> None:
        b, k = feats.shape[0], self.max_samples
        held = self.reservoir_size
        fill = max(0, min(b, k - held))  # rows appended in order while the reservoir is not full
        if fill:
            if self._res_features is not None:
                self._res_features = torch.cat([self._res_features, feats[:fill]])
            if self._res_logits is not None:
                assert logs is not None  # _add passes logits whenever the reservoir keeps them
                self._res_logits = torch.cat([self._res_logits, logs[:fill]])
        rest = b - fill
        if rest <= 0:
            return
        index = np.arange(first + fill, first + b, dtype=np.float64)  # global sample indices >= max_samples
        slots = np.floor(self._rng.random(rest) * (index + 1)).astype(np.int64)
        chosen = np.nonzero(slots < k)[0]
        if chosen.size == 0:
            return
        # A later sample wins a slot hit twice in one batch (as one-at-a-time replacement would).
        rev_slots, rev_first = np.unique(slots[chosen][::-1], return_index=True)
        rows = chosen[::-1][rev_first] + fill
        slot_t = torch.from_numpy(rev_slots).to(self.device)
        row_t = torch.from_numpy(rows).to(self.device)
        if self._res_features is not None:
            self._res_features[slot_t] = feats[row_t]
        if self._res_logits is not None:
            assert logs is not None  # _add passes logits whenever the reservoir keeps them
            self._res_logits[slot_t] = logs[row_t]

    # ------------------------------------------------------------------------- compute

    def compute(self) -> ScoreResult:
        """Metrics of everything added since the last reset, as a ScoreResult like :func:`genbench.score`'s.
        The state is kept. Under torch.distributed every rank must call it, and all get the same result."""
        started = time.perf_counter()
        if self._pending is None:
            return self._compute(started)
        saved = (self._n, self._total, self._outer, self._nonfinite, self._res_features, self._res_logits,
                 self._rng.bit_generator.state, self._pending)
        self._total, self._outer, self._nonfinite = self._total.clone(), self._outer.clone(), self._nonfinite.clone()
        if self._res_features is not None:
            self._res_features = self._res_features.clone()
        if self._res_logits is not None:
            self._res_logits = self._res_logits.clone()
        try:
            with torch.inference_mode():
                self._add(self._pending)  # the last, short batch, on a copy of the state
            self._pending = None
            return self._compute(started)
        finally:
            (self._n, self._total, self._outer, self._nonfinite, self._res_features, self._res_logits,
             rng_state, self._pending) = saved
            self._rng.bit_generator.state = rng_state

    def _compute(self, started: float) -> ScoreResult:
        rank, world = _world()
        d = self.dim
        if world > 1:
            flat = torch.cat([torch.tensor([float(self._n)], dtype=torch.float64, device=self.device),
                              self._nonfinite.reshape(1), self._total, self._outer.reshape(-1)])
            comm = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
            flat = flat.to(comm)
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            values = flat.cpu().numpy()
            n, nonfinite = int(round(values[0])), float(values[1])
            total, outer = values[2:2 + d], values[2 + d:].reshape(d, d)
        else:  # no copy of the d x d sums on the CPU (compute() reads them and changes nothing)
            n, nonfinite = self._n, float(self._nonfinite.item())
            total, outer = self._total.cpu().numpy(), self._outer.cpu().numpy()
        features = None if self._res_features is None else self._res_features.cpu().numpy()
        logits = None if self._res_logits is None else self._res_logits.cpu().numpy()
        if world > 1 and (features is not None or logits is not None):
            parts: list = [None] * world
            dist.all_gather_object(parts, (self._n, features, logits))
            features, logits = self._merge_reservoirs(parts, n)
        if nonfinite > 0:
            raise InputError(f"update(images): the extractor produced NaN or Inf features/logits for {int(nonfinite)} "
                             "images; call reset() and check the generated images")
        if n == 0:
            raise InputError("compute() before any update(): no generated images; call update(images) first")
        if n < 2:
            raise InputError(f"compute(): {n} generated image(s) so far; statistics need at least 2")
        stats = FeatureStats(n, total, outer)
        held = features if features is not None else logits
        kept = 0 if held is None else len(held)
        info = {"kind": "stream", "location": "Evaluator.update()", "precision": self.xo.precision,
                "reservoir": {"max_samples": self.max_samples, "kept": kept, "seed": self.seed}}
        if world > 1:
            info["world_size"] = world
        gen = Evaluated("generated", "Evaluator stream (generated)", dict(self.identity), stats,
                        features=features, logits=logits, info=info)
        ref = self.reference
        n_ref = len(ref.features) if ref.features is not None else ref.n
        preflight_metrics(self.plan, kept if held is not None else n, n_ref, self.mo)
        with plan_scope():  # precision/recall/density/coverage share one k-NN sweep
            metrics = {out_name: self._fd(stats) if kind == "fd" and self.mo.bootstrap == 0
                       else METRICS.get(kind).compute(gen, ref, self.mo) for out_name, kind in self.plan}
        provenance = build_provenance(
            {**self.identity, "precision": self.xo.precision},
            {"generated": {**gen.info, "n": gen.n}, "reference": {**ref.info, "n": ref.n}},
            options={"metric_options": self.mo.to_dict()},
            seed=self.mo.seed,
            extract_options=self.xo,
            started=started,
            unchecked=self.unchecked,
            stamp={"created_at": utc_now(), "git_commit": self._git_commit},
        )
        if world > 1:
            provenance["rank"] = rank
        return ScoreResult(metrics, provenance)

    def _fd(self, stats: FeatureStats) -> dict:
        """The "fd" metric's entry, as the registry's (without bootstrap), against the reference's mean,
        covariance and factor prepared once (genbench.metrics.fid.FrechetReference). With the sums on a CUDA
        device (one process), the same algorithm runs there in torch (genbench.metrics.fid_torch)."""
        if self.device.type == "cuda" and _world()[1] == 1:
            from .metrics.fid_torch import TorchFrechetReference, moments

            if self._fd_reference_torch is None:
                ref = self.reference.stats
                self._fd_reference_torch = TorchFrechetReference(
                    torch.from_numpy(ref.mean()).to(self.device), torch.from_numpy(ref.cov()).to(self.device))
            mu, sigma = moments(self._n, self._total, self._outer)
            return {"value": self._fd_reference_torch.distance(mu, sigma)}
        if self._fd_reference is None:
            self._fd_reference = FrechetReference.from_stats(self.reference.stats)
        return {"value": self._fd_reference.distance(stats.mean(), stats.cov())}

    def _merge_reservoirs(self, parts: list, n_total: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """One reservoir from the ranks' (count, features, logits), identical on every rank."""
        counts = [int(c) for c, _, _ in parts]
        held = [len(f if f is not None else g) for _, f, g in parts]
        if sum(held) <= self.max_samples:
            take = [np.arange(h) for h in held]
        else:
            rng = np.random.default_rng([self.seed, n_total])
            per_rank = rng.multivariate_hypergeometric(counts, self.max_samples)
            take = [np.sort(rng.choice(h, size=int(m), replace=False)) for h, m in zip(held, per_rank)]
        out: list[np.ndarray | None] = []
        for i in (1, 2):
            if parts[0][i] is None:
                out.append(None)
            else:
                out.append(np.concatenate([p[i][t] for p, t in zip(parts, take)]).astype(np.float32, copy=False))
        return out[0], out[1]


# ----------------------------------------------------------------------------- tensor conversion

_SCALE_HINT = ("For images in [-1, 1] pass (x + 1) / 2; for values 0..255 pass x.round().to(torch.uint8) "
               "(numpy: x.round().astype(np.uint8)).")
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _tensor_to_rgb_uint8(t: torch.Tensor, name: str, layout: str | None = None) -> torch.Tensor:
    """The rules of :func:`~genbench.sources.convert.array_to_rgb_uint8_batch` on a tensor, on its own device:
    uint8 [N, 3, H, W] contiguous."""
    if t.layout != torch.strided:
        raise InputError(f"{name}: expected a dense tensor, got layout {t.layout}; pass tensor.to_dense()")
    if t.is_meta:
        raise InputError(f"{name}: a tensor on the meta device holds no values; pass the images themselves")
    if t.dtype not in (torch.uint8, torch.uint16) + _FLOATS:
        raise InputError(
            f"{name}: images must be uint8, uint16 or float in [0, 1]; got {t.dtype}. "
            "If the values are 0..255, cast with tensor.to(torch.uint8)."
        )
    layout = infer_layout(tuple(t.shape), name, layout)
    if layout == "NHW":
        t = t[:, None]
    elif layout == "NHWC":
        t = t.permute(0, 3, 1, 2)
    c = t.shape[1]
    if c == 4:
        t = t[:, :3]
    if t.dtype == torch.uint16:
        wide = t.to(torch.int64)
        t = ((wide * 255 + 32767) // 65535).to(torch.uint8)
    elif t.dtype != torch.uint8:
        x = t.to(torch.float64)
        bad = ~((x >= 0.0) & (x <= 1.0))  # NaN too
        n_bad = int(bad.sum().item()) if x.numel() else 0
        if n_bad:
            finite = x[torch.isfinite(x)]
            found = (f"[{finite.min().item():.6g}, {finite.max().item():.6g}]" if finite.numel()
                     else "no finite values")
            raise InputError(
                f"{name}: float images must lie in [0, 1] (mapped by round(x*255)); {n_bad} of {x.numel()} values "
                f"are outside it (finite range {found}, {int(torch.isnan(x).sum())} NaN, "
                f"{int(torch.isinf(x).sum())} infinite). {_SCALE_HINT}"
            )
        t = torch.round(x * 255.0).to(torch.uint8)  # torch.round rounds half to even, like numpy.rint
    if c == 1:
        t = t.expand(t.shape[0], 3, *t.shape[2:])
    return t.contiguous()

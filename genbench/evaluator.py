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

from .config import API_DEFAULTS, ExtractOptions, MetricOptions, keywords_doc, split_options
from .errors import ConfigError, InputError, ReferenceStatsError
from .evaluate import Evaluated, Run, prepare_run
from .extraction.accumulator import STATE_FORMAT, FeatureAccumulator
from .metrics.registry import REF_FEATURES
from .results.history import git_commit, utc_now
from .results.records import ScoreResult
from .sources.convert import array_to_rgb_uint8_batch, infer_layout

__all__ = ["Evaluator", "IncompatibleReferenceError", "STATE_FORMAT"]


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
    :func:`genbench.score` (default: :func:`genbench.evaluate.default_metrics`, the rule every verb follows).
    ``extractor``/``weights``/``preprocessing``: as in score (default: follow the reference).
    ``device``: where the network and the running sums live (default ``"cpu"``; under torchrun ``cuda``
    becomes ``cuda:LOCAL_RANK``). ``seed``: seed of the reservoir and, unless ``metric_options`` is given,
    of the metrics. ``max_samples``: reservoir rows kept for KID / PRDC / IS. ``batch_size``: the most
    images sent through the network at once (larger ``update()`` batches are cut; also the reference's
    extraction batch; default: :func:`genbench.config.default_batch_size` of the extractor and device, as
    ``genbench score``). The other keywords and their defaults are :class:`genbench.config.ExtractOptions`'.

    The reference, the extractor, the options, the metric plan and the provenance are one prepared run
    (:func:`genbench.evaluate.prepare_run`), the same as :func:`genbench.score` makes; the generated side is that
    run's streamed role, summed by one :class:`~genbench.extraction.accumulator.FeatureAccumulator`.
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
        **extract: Any,
    ) -> None:
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 2:
            raise ConfigError(f"max_samples must be an integer >= 2, got {max_samples!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
        if metric_options is not None and not isinstance(metric_options, MetricOptions):
            raise ConfigError("metric_options must be a genbench.config.MetricOptions, got "
                              f"{type(metric_options).__name__}")
        (values,) = split_options(extract, ExtractOptions, call="Evaluator")
        given = ExtractOptions(**{**API_DEFAULTS, "extractor": extractor, **({"device": device} if device else {}),
                                  **values})
        mo = metric_options if metric_options is not None else MetricOptions(seed=seed)
        self.seed, self.max_samples = seed, max_samples
        try:  # the extractor by the one rule (genbench.evaluate.choose_extractor), checked against the reference
            self.run: Run = prepare_run({"reference": reference}, given, mo, metrics, streamed=("generated",),
                                        specs=[reference], build=True)
        except ReferenceStatsError as exc:
            raise IncompatibleReferenceError(
                f"reference: {exc} (pass extractor=/preprocessing= matching the reference, or another reference)"
            ) from None
        assert self.run.extractor is not None  # a streamed role builds the extractor
        self.extractor = self.run.extractor.eval()
        self.device = torch.device(self.xo.device)
        if self.device.type == "cuda":
            self.extractor.to(memory_format=torch.channels_last)  # as genbench.extraction.engine.prepare_extractor
        self.identity = self.extractor.identity().to_dict()
        self.dim = int(self.extractor.feature_dim)
        self.keep_features, self.keep_logits = self.run.keeps("generated")

        ref = self.run.evaluated("reference")
        if REF_FEATURES in self.run.needs and _world()[1] > 1:  # torchrun extraction gathers features to rank 0 only
            box = [ref.features]
            dist.broadcast_object_list(box, src=0)
            ref.features = box[0]
        self.reference: Evaluated = ref
        self._git_commit = git_commit()  # once: a subprocess per compute() would cost a training loop time
        self.reset()

    # ------------------------------------------------------------------------- the run's settings

    @property
    def xo(self) -> ExtractOptions:
        """The resolved extraction options (an unset batch size is the extractor's default)."""
        return self.run.options

    @property
    def mo(self) -> MetricOptions:
        return self.run.metric_options

    @property
    def plan(self) -> list[tuple[str, str]]:
        return self.run.plan

    @property
    def unchecked(self) -> dict[str, list[str]]:
        return self.run.unchecked

    # ------------------------------------------------------------------------- state

    def reset(self) -> None:
        """Forget every generated image (sums, reservoir, sampling generator); the reference stays."""
        self.acc = FeatureAccumulator(self.dim, self.device, keep_features=self.keep_features,
                                      keep_logits=self.keep_logits, logits_dim=self.extractor.logits_dim,
                                      capacity=self.max_samples, seed=self.seed, rank=_world()[0])
        self._pending: torch.Tensor | None = None  # uint8 [p < batch_size, 3, H, W] not yet through the network

    @property
    def num_samples(self) -> int:
        """Generated images given to this process since the last reset (extracted or waiting for a full batch)."""
        return self.acc.n + (0 if self._pending is None else int(self._pending.shape[0]))

    @property
    def reservoir_size(self) -> int:
        """Rows held in this process's reservoir (0 when only FD-type metrics are asked for)."""
        return self.acc.kept

    def state_dict(self) -> dict:
        """Running sums, reservoir and sampling-generator state as plain tensors (CPU) and scalars; loadable
        with ``torch.load(..., weights_only=True)``. Under torch.distributed each rank has its own."""
        out = self.acc.state_dict()
        out["weights_sha256"] = self.identity.get("weights_sha256")
        if self._pending is not None:
            out["pending_images"] = self._pending.cpu().clone()
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (from an evaluator with the same extractor, seed,
        max_samples and metrics needing the same per-sample rows); ConfigError naming the field otherwise."""
        if isinstance(state, dict) and state.get("weights_sha256") != self.identity.get("weights_sha256"):
            raise ConfigError(f"state: weights_sha256={state.get('weights_sha256')!r}, but this evaluator has "
                              f"weights_sha256={self.identity.get('weights_sha256')!r}")
        pending = state.get("pending_images") if isinstance(state, dict) else None
        if pending is not None and (not isinstance(pending, torch.Tensor) or pending.dtype != torch.uint8
                                    or pending.ndim != 4 or pending.shape[1] != 3
                                    or not 0 < pending.shape[0] < (self.xo.batch_size or 0)):
            raise ConfigError(f"state: pending_images must be uint8 [p, 3, H, W] with 0 < p < batch_size="
                              f"{self.xo.batch_size}, got {getattr(pending, 'dtype', type(pending).__name__)} "
                              f"{tuple(getattr(pending, 'shape', ()))}")
        acc = FeatureAccumulator(self.dim, self.device, keep_features=self.keep_features, keep_logits=self.keep_logits,
                                 logits_dim=self.extractor.logits_dim, capacity=self.max_samples, seed=self.seed,
                                 rank=_world()[0])
        acc.load_state_dict(state)
        self.acc = acc
        self._pending = None if pending is None else pending.to(self.device).clone()

    # ------------------------------------------------------------------------- update

    def update(self, images: Any, layout: str | None = None) -> None:
        """Add a batch of generated images (see the module docstring for the accepted forms)."""
        batch = self._to_uint8(images, layout)
        if batch.shape[0] == 0:
            return
        step = self.xo.batch_size
        assert step is not None  # ExtractOptions fills in the default
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

    def _add(self, batch: torch.Tensor, acc: FeatureAccumulator | None = None) -> None:
        out = self.extractor(batch)
        features = out["features"].detach()
        if features.ndim != 2 or features.shape != (batch.shape[0], self.dim):
            raise InputError(f"extractor {self.extractor.name} returned features of shape {tuple(features.shape)}, "
                             f"expected ({batch.shape[0]}, {self.dim})")
        logits = out.get("logits") if self.keep_logits else None
        if self.keep_logits and logits is None:
            raise InputError(f"extractor {self.extractor.name} returned no logits")
        # Immediate on the CPU (the batch is refused whole); on CUDA read once, in compute().
        (acc or self.acc).add(features, logits, check_now=self.device.type != "cuda", where="update(images)")

    # ------------------------------------------------------------------------- compute

    def compute(self) -> ScoreResult:
        """Metrics of everything added since the last reset, as a ScoreResult like :func:`genbench.score`'s.
        The state is kept. Under torch.distributed every rank must call it, and all get the same result."""
        started = time.perf_counter()
        acc = self.acc
        if self._pending is not None:  # the last, short batch, on a copy of the state
            acc = self.acc.clone()
            with torch.inference_mode():
                self._add(self._pending, acc)
        rank, world = _world()
        got = acc.reduce("update(images)")
        n = got.stats.n
        if n == 0:
            raise InputError("compute() before any update(): no generated images; call update(images) first")
        if n < 2:
            raise InputError(f"compute(): {n} generated image(s) so far; statistics need at least 2")
        info: dict[str, Any] = {"kind": "stream", "location": "Evaluator.update()", "precision": self.xo.precision,
                                "reservoir": {"max_samples": self.max_samples, "kept": got.kept, "seed": self.seed}}
        if world > 1:
            info["world_size"] = world
        gen = Evaluated("generated", "Evaluator stream (generated)", dict(self.identity), got.stats,
                        features=got.features, logits=got.logits, info=info)
        self.run.started = started
        metrics = self.run.compute({"generated": gen, "reference": self.reference})
        provenance = self.run.provenance({"generated": gen, "reference": self.reference},
                                         stamp={"created_at": utc_now(), "git_commit": self._git_commit})
        if world > 1:
            provenance["rank"] = rank
        return ScoreResult(metrics, provenance)


Evaluator.__doc__ = (Evaluator.__doc__ or "") + keywords_doc(ExtractOptions)


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

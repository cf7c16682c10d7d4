"""Metric values to TensorBoard, Weights & Biases or MLflow: for the Evaluator, ``genbench.score`` and sweeps.

    >>> from genbench.integrations.loggers import TensorBoardLogger, log_result
    >>> tb = TensorBoardLogger("runs/fid")
    >>> log_result(tb, evaluator.compute(), step=trainer_step)      # fd_fmnist, fd_fmnist/ci95_low, ...

A logger is anything with ``log_metrics(values: dict[str, float], step: int)`` and ``close()``. What is logged
(:func:`scalars`): each metric's headline (``value``, else ``mean``) under its name, and where present its
``std`` and 95% interval as ``NAME/std``, ``NAME/ci95_low`` and ``NAME/ci95_high``. Each library is imported
when its logger is made; a missing one is an ImportError naming the extra to install.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is not installed: pip install 'genbench[{extra}]' ({exc})") from exc


def scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The loggable numbers of a result's ``metrics`` (see the module docstring); non-finite ones are dropped."""
    out: dict[str, float] = {}
    for name, entry in metrics.items():
        if not isinstance(entry, Mapping):
            continue
        head = entry.get("value", entry.get("mean"))
        parts = {name: head, f"{name}/std": entry.get("std")}
        ci = entry.get("ci95")
        if ci:
            parts.update({f"{name}/ci95_low": ci[0], f"{name}/ci95_high": ci[1]})
        for key, value in parts.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out[key] = float(value)
    return out


def log_result(logger: Any, result: Any, step: int) -> dict[str, float]:
    """Log a ScoreResult (``Evaluator.compute()``, ``genbench.score``) or its dict at ``step``; returns what was
    logged."""
    metrics = result.metrics if hasattr(result, "metrics") else result["metrics"]
    values = scalars(metrics)
    logger.log_metrics(values, step=int(step))
    return values


class TensorBoardLogger:
    """Scalars through ``torch.utils.tensorboard.SummaryWriter`` (``log_dir``, or a ``writer`` of yours)."""

    def __init__(self, log_dir: str | None = None, writer: Any = None, prefix: str = "genbench/") -> None:
        if writer is None:
            _need("tensorboard", "tensorboard")
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=log_dir)
        self.writer, self.prefix = writer, prefix

    def log_metrics(self, values: Mapping[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(self.prefix + key, value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """``wandb.log`` into ``run`` (yours), or a run started with ``wandb.init(**init)``, which ``close()`` finishes.
    A step goes to the ``step_metric`` (``genbench/step``), so it never collides with the run's own steps."""

    def __init__(self, run: Any = None, step_metric: str = "genbench/step", **init: Any) -> None:
        wandb = _need("wandb", "wandb")
        self.owned = run is None
        self.run = wandb.init(**init) if run is None else run
        self.step_metric = step_metric
        self.run.define_metric(step_metric)
        self.run.define_metric("*", step_metric=step_metric)

    def log_metrics(self, values: Mapping[str, float], step: int) -> None:
        self.run.log({**values, self.step_metric: step})

    def close(self) -> None:
        if self.owned:
            self.run.finish()


class MLflowLogger:
    """``mlflow.log_metrics`` into the active run (or ``run_id``); one is started (in ``experiment``, at
    ``tracking_uri``) and ended by ``close()`` when none is active. ``NAME/std`` is logged as ``NAME.std`` (and so
    on): MLflow's file store keeps each metric in a file named after it, so ``kid/std`` beside ``kid`` fails."""

    def __init__(self, experiment: str | None = None, tracking_uri: str | None = None, run_id: str | None = None,
                 run_name: str | None = None) -> None:
        mlflow = _need("mlflow", "mlflow")
        if tracking_uri is not None:
            mlflow.set_tracking_uri(tracking_uri)
        if experiment is not None:
            mlflow.set_experiment(experiment)
        self.mlflow = mlflow
        self.owned = mlflow.active_run() is None
        self.run = mlflow.start_run(run_id=run_id, run_name=run_name) if self.owned else mlflow.active_run()

    @property
    def run_id(self) -> str:
        return str(self.run.info.run_id)

    def log_metrics(self, values: Mapping[str, float], step: int) -> None:
        named = {key.replace("/", "."): value for key, value in values.items()}
        self.mlflow.log_metrics(named, step=int(step), run_id=self.run_id)

    def close(self) -> None:
        if self.owned:
            self.mlflow.end_run()


def from_spec(spec: str) -> Any:
    """A logger from ``genbench sweep --log``: ``tensorboard:DIR``, ``wandb:PROJECT`` or ``mlflow:EXPERIMENT``
    (MLflow's tracking URI from ``$MLFLOW_TRACKING_URI``, as MLflow reads it). ConfigError for another kind."""
    kind, _, where = spec.partition(":")
    if kind == "tensorboard":
        return TensorBoardLogger(where or None)
    if kind == "wandb":
        return WandbLogger(project=where or None, job_type="genbench-sweep")
    if kind == "mlflow":
        return MLflowLogger(experiment=where or None)
    raise ConfigError(f"--log {spec}: expected tensorboard:DIR, wandb:PROJECT or mlflow:EXPERIMENT")


def sweep_callback(loggers: list[Any]) -> Callable[[dict], None]:
    """``on_entry`` for :func:`genbench.sweep.run_sweep`: each new line's metrics at its step (its order in the
    sweep where its name gives no step)."""
    seen = [0]

    def log(line: dict) -> None:
        step = line.get("step")
        seen[0] += 1
        for logger in loggers:
            log_result(logger, line, step if step is not None else seen[0] - 1)

    return log

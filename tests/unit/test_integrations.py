"""genbench.integrations: the Lightning callback and the TensorBoard, W&B and MLflow loggers, where installed."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import genbench
from genbench.integrations.loggers import log_result, scalars, sweep_callback
from tests.conftest import make_images


def _need(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install 'genbench[{extra}]'); its integration is not tested here")


@pytest.fixture
def result(tmp_path):
    np.save(tmp_path / "ref.npy", make_images(300, seed=0))
    evaluator = genbench.Evaluator(str(tmp_path / "ref.npy"), metrics=["fd", "kid"], extractor="test-tiny",
                                   metric_options=genbench.config.MetricOptions(kid_subset_size=50, kid_subsets=5))
    evaluator.update(torch.from_numpy(make_images(120, seed=1, shift=0.1)).permute(0, 3, 1, 2))
    return evaluator.compute()


def test_scalars():
    got = scalars({"fd_x": {"value": 1.5, "ci95": [1.0, 2.0]}, "kid_x": {"mean": 0.1, "std": 0.01},
                   "bad": {"value": float("nan")}, "note": "text"})
    assert got == {"fd_x": 1.5, "fd_x/ci95_low": 1.0, "fd_x/ci95_high": 2.0, "kid_x": 0.1, "kid_x/std": 0.01}


def test_tensorboard_logger(result, tmp_path):
    _need("tensorboard", "tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from genbench.integrations.loggers import TensorBoardLogger

    tb = TensorBoardLogger(str(tmp_path / "tb"))
    logged = log_result(tb, result, step=7)
    tb.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    (point,) = events.Scalars("genbench/fd_tiny")
    assert point.step == 7 and point.value == pytest.approx(result.value("fd_tiny"), rel=1e-6)  # stored as float32
    assert "genbench/kid_tiny/std" in events.Tags()["scalars"] and logged["kid_tiny"] == result.value("kid_tiny")


def test_wandb_logger_offline(result, tmp_path, monkeypatch):
    _need("wandb", "wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    from genbench.integrations.loggers import WandbLogger

    logger = WandbLogger(project="genbench-test", dir=str(tmp_path))
    log_result(logger, result, step=3)
    summary = dict(logger.run.summary)
    run_dir = __import__("pathlib").Path(logger.run.dir).parent
    logger.close()
    assert summary["fd_tiny"] == pytest.approx(result.value("fd_tiny")) and summary["genbench/step"] == 3
    (record,) = run_dir.glob("*.wandb")  # the offline run's record, for `wandb sync`
    assert record.stat().st_size > 0


def test_mlflow_logger_file_store(result, tmp_path, monkeypatch):
    _need("mlflow", "mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this switch
    import mlflow

    from genbench.integrations.loggers import MLflowLogger

    uri = (tmp_path / "mlruns").as_uri()
    logger = MLflowLogger(experiment="genbench-test", tracking_uri=uri)
    for step in (1, 2):
        log_result(logger, result, step=step)
    run_id = logger.run_id
    logger.close()
    history = mlflow.tracking.MlflowClient(uri).get_metric_history(run_id, "fd_tiny")
    assert [m.step for m in history] == [1, 2] and history[0].value == pytest.approx(result.value("fd_tiny"))
    assert mlflow.tracking.MlflowClient(uri).get_metric_history(run_id, "kid_tiny.std")


def test_sweep_callback_logs_at_the_step():
    seen = []

    class Memory:
        def log_metrics(self, values, step):
            seen.append((step, values))

    log = sweep_callback([Memory()])
    log({"step": 2000, "metrics": {"fd_x": {"value": 3.0}}})
    log({"step": None, "metrics": {"fd_x": {"value": 2.0}}})
    assert seen == [(2000, {"fd_x": 3.0}), (1, {"fd_x": 2.0})]


def test_lightning_callback(tmp_path):
    _need("lightning", "lightning")
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    from genbench.integrations.lightning import GenbenchCallback

    np.save(tmp_path / "ref.npy", make_images(200, seed=0))

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.zeros(3, 1, 1))

        def sample(self, k, generator):
            base = torch.rand(k, 3, 4, 4, generator=generator, device=self.device)
            return (base.repeat_interleave(4, 2).repeat_interleave(4, 3) + self.bias).clamp(0, 1)

        def training_step(self, batch, batch_idx):
            return ((self.bias - 0.1) ** 2).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    callback = GenbenchCallback(str(tmp_path / "ref.npy"), metrics=["fd"], every_n_batches=2, n_samples=64, chunk=32,
                                extractor="test-tiny")
    trainer = pl.Trainer(max_steps=4, callbacks=[callback], logger=CSVLogger(tmp_path, name="", version=""),
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         log_every_n_steps=1, accelerator="cpu")
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(8, 1)), batch_size=2)
    trainer.fit(Tiny(), data)
    assert [b for b, _ in callback.history] == [2, 4]
    assert float(trainer.callback_metrics["fd_tiny"]) == callback.history[-1][1]["fd_tiny"]
    assert "fd_tiny" in (tmp_path / "metrics.csv").read_text()


def test_cli_sweep_logs_to_tensorboard(tmp_path, monkeypatch):
    _need("tensorboard", "tensorboard")
    from click.testing import CliRunner
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from genbench.cli.app import main

    monkeypatch.chdir(tmp_path)
    np.save("ref.npy", make_images(300, seed=0))
    for step in (100, 200):
        np.savez(f"ckpt-{step}.npz", images=make_images(100, seed=step, shift=step / 2000))
    done = CliRunner().invoke(main, ["sweep", "ckpt-100.npz", "ckpt-200.npz", "--ref", "ref.npy", "--out", "s.jsonl",
                                     "--extractor", "test-tiny", "--metrics", "fd", "--bootstrap", "5",
                                     "--log", "tensorboard:tb", "-q", "--plot", "-"])
    assert done.exit_code == 0, done.output
    events = EventAccumulator("tb")
    events.Reload()
    assert [p.step for p in events.Scalars("genbench/fd_tiny")] == [100, 200]
    done = CliRunner().invoke(main, ["sweep", "ckpt-100.npz", "--ref", "ref.npy", "--out", "t.jsonl", "--log", "x:y"])
    assert done.exit_code == 2 and "tensorboard:DIR" in done.output

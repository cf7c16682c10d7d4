"""The shared loop's EMA, batch-norm recalibration, learning-rate schedule and config range checks.

Each is checked against a closed form or a direct computation, not against the loop itself.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genbench import baselines
from genbench.baselines.ema import WeightAverage, recompute_batch_norm
from genbench.baselines.train import load_run_config, make_schedules
from genbench.errors import ConfigError
from tests.conftest import needs_fashion_mnist
from tests.unit.test_baselines import tiny_config

needs_data = needs_fashion_mnist


def test_weight_average_is_the_exponential_moving_average():
    net = nn.Linear(3, 2)
    ema = WeightAverage(net, decay=0.9, start=2)
    history = []
    for step in range(1, 8):
        with torch.no_grad():
            net.weight.copy_(torch.full_like(net.weight, float(step)))
        history.append(float(step))
        ema.update(step)
    # Steps 1..2 copy the raw weights; from step 3 on: avg = 0.9 avg + 0.1 w.
    want = history[1]
    for w in history[2:]:
        want = 0.9 * want + 0.1 * w
    np.testing.assert_allclose(ema.average.weight.detach().numpy(), want, rtol=1e-6)
    assert not any(p.requires_grad for p in ema.average.parameters())


def test_recomputed_batch_norm_statistics_are_the_plain_average_over_passes():
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, without touching the global generator
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    net[1].running_mean.fill_(100.0)  # stale statistics, to be replaced
    batches = [torch.randn(16, 4, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    recompute_batch_norm(net, lambda i: net(batches[i]), batches=5)
    with torch.no_grad():
        hidden = [net[0](x) for x in batches]
    mean = torch.stack([h.mean(0) for h in hidden]).mean(0)
    var = torch.stack([h.var(0, unbiased=True) for h in hidden]).mean(0)
    np.testing.assert_allclose(net[1].running_mean.numpy(), mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net[1].running_var.numpy(), var.numpy(), rtol=1e-5, atol=1e-6)
    assert not net.training and net[1].momentum == 0.1  # eval mode and the momentum put back


def test_linear_schedule_decays_to_zero_from_its_start():
    class Holder:
        def __init__(self) -> None:
            self.param = nn.Parameter(torch.zeros(1))
            self.optimizers = {"a": torch.optim.SGD([self.param], lr=0.4)}

    holder = Holder()
    (scheduler,) = make_schedules(holder, "linear", 0.5, steps=10)  # type: ignore[arg-type]
    seen = []
    for _ in range(10):
        seen.append(holder.optimizers["a"].param_groups[0]["lr"])
        holder.optimizers["a"].step()
        scheduler.step()
    # Optimiser step k (1-based) runs at 0.4 * min(1, (10 - (k - 1)) / 5).
    want = [0.4 * min(1.0, (10 - k) / 5) for k in range(10)]
    np.testing.assert_allclose(seen, want, rtol=1e-12)
    assert make_schedules(holder, "constant", 0.5, 10) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("table,key,value,message", [
    ("model", "lr", -1e-3, "model.lr .*must be > 0"),
    ("model", "beta1", 1.5, "model.beta1 .*in \\[0, 1\\)"),
    ("train", "batch_size", 0, "train.batch_size must be >= 1"),
    ("train", "steps", 0, "train.steps must be >= 1"),
    ("train", "ema_decay", 1.0, "train.ema_decay must be in \\[0, 1\\)"),
    ("train", "lr_schedule", "cosine", "train.lr_schedule = 'cosine'"),
    ("train", "lr_decay_start", 2.0, "train.lr_decay_start"),
    ("train", "time_limit_s", -5.0, "train.time_limit_s must be >= 0"),
])
def test_out_of_range_training_options_are_refused_before_training(table, key, value, message):
    config = tiny_config("dcgan")
    config[table] = {**config.get(table, {}), key: value}
    with pytest.raises(ConfigError, match=message):
        load_run_config("dcgan", config)


@needs_data
def test_ema_on_a_family_without_an_averaged_network_is_refused(tmp_path):
    config = tiny_config("vae", ema_decay=0.99)
    with pytest.raises(ConfigError, match="vae family has no network to average"):
        baselines.train("vae", config=config, dry_run=True, device="cpu", log=lambda m: None)


@needs_data
def test_ema_checkpoint_holds_the_averaged_generator(tmp_path):
    """With ema_start beyond the run the average is a copy of the raw weights, so the sampled generator equals
    a run without EMA except for its recomputed batch-norm statistics; with a short start it differs."""
    plain = baselines.train("dcgan", config=tiny_config("dcgan"), out=tmp_path / "a.pt", dry_run=True, device="cpu",
                            log=lambda m: None)
    copied = baselines.train("dcgan", config=tiny_config("dcgan", ema_decay=0.9, ema_start=100), out=tmp_path / "b.pt",
                             dry_run=True, device="cpu", log=lambda m: None)
    averaged = baselines.train("dcgan", config=tiny_config("dcgan", ema_decay=0.9, ema_start=0), out=tmp_path / "c.pt",
                               dry_run=True, device="cpu", log=lambda m: None)
    nets = [torch.load(p, weights_only=True)["state"]["nets"]["generator"] for p in (plain, copied, averaged)]
    weights = [n["project.0.weight"] for n in nets]
    torch.testing.assert_close(weights[0], weights[1])
    assert not torch.allclose(weights[0], weights[2])
    assert not torch.allclose(nets[0]["project.1.running_mean"], nets[1]["project.1.running_mean"])


def test_generator_cache_key_follows_the_weights_in_memory():
    """A model changed after loading (e.g. other weights swapped in) must not hit the cache entry of the file."""
    from genbench.baselines import load_checkpoint
    from genbench.sources.models import GeneratorSource

    model = load_checkpoint("dcgan")
    before = GeneratorSource(model, 8, seed=0).fingerprint()
    assert GeneratorSource(load_checkpoint("dcgan"), 8, seed=0).fingerprint() == before
    assert GeneratorSource(model, 8, seed=1).fingerprint() != before
    assert GeneratorSource(model, 9, seed=0).fingerprint() != before
    with torch.no_grad():
        next(model.nets["generator"].parameters()).add_(1e-3)
    assert GeneratorSource(model, 8, seed=0).fingerprint() != before

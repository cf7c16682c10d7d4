"""Tests of the bundled baselines (baselines/): the shared loop, configs, checkpoints and sampling.

Every family trains a couple of steps on a tiny config (module-scoped, so each trains once).
Determinism and quantisation are checked against independent computations (torchvision's
save_image, numpy covariance, an autograd Jacobian).
"""
from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genbench import baselines
from genbench.baselines import (
    FAMILIES,
    load_checkpoint,
    sample_images,
    sample_images_and_labels,
)
from genbench.baselines import checkpoint as ckpt_mod
from genbench.baselines.train import baseline_names, load_run_config
from genbench.cli.app import main
from genbench.errors import ConfigError, InputError, WeightsError
from genbench.sources.models import GeneratorSource, quantize
from tests.conftest import fashion_mnist_found, needs_fashion_mnist

needs_data = needs_fashion_mnist

ALL = ["cgan", "cyclegan", "dcgan", "flow", "glo", "vae", "wgan-gp"]
VARIANTS = ["dcgan-stacked"]  # configs/NAME.toml of a family under another name
STACKED = "stacked-fashion-mnist:train"

TINY_MODEL = {
    "dcgan": {"z_dim": 8, "g_ch": 4, "d_ch": 4},
    "wgan-gp": {"z_dim": 8, "g_ch": 4, "d_ch": 4, "n_critic": 2},
    "cgan": {"z_dim": 8, "g_ch": 4, "d_ch": 4},
    "vae": {"z_dim": 4, "ch": 4, "fc_dim": 8},
    "glo": {"z_dim": 4, "g_ch": 4, "n_codes": 64},
    "flow": {"hidden_ch": 4, "depth": 2},
    "cyclegan": {"g_ch": 4, "d_ch": 4, "n_res": 1, "pool_size": 4},
}


def tiny_config(name: str, **train: object) -> dict:
    return {
        "family": name,
        "seed": 1,
        "data": {"eval_dataset": "fashion-mnist:test", "eval_n": 16},
        "train": {"dry_run_steps": 2, "dry_run_batch_size": 8, **train},
        "model": TINY_MODEL[name],
    }


def assert_same_samples(got: np.ndarray, want: np.ndarray, floats: torch.Tensor, output_range: tuple[float, float],
                        margin: float = 1e-3) -> None:
    """uint8 samples equal, except by one level where the float sample lies within ``margin`` (in 1/255
    steps) of a rounding boundary of ``quantize``.

    Decoding at another batch size (or batch composition) runs other float32 kernels, which may round
    the last bits differently, how much depending on the CPU and thread count (up to ~1e-4 of a level
    seen here); a pixel sitting on a boundary (e.g. tanh(0) = 0 -> 127.5 + 0.5) can then go either way.
    ``floats`` [B, C, H, W] is the model's float output for the same samples (``model.sample``).
    """
    lo, hi = output_range
    level = (floats.detach().double().clamp(lo, hi) - lo) / (hi - lo) * 255 + 0.5
    level = level[:, 0] if level.shape[1] == 1 else level.permute(0, 2, 3, 1)
    level = level.numpy()
    near = np.abs(level - np.round(level)) < margin
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert got.shape == want.shape and got.dtype == want.dtype == np.uint8
    assert diff.max(initial=0) <= 1 and not diff[~near].any(), (int((diff > 0).sum()), int(near.sum()))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The CPU is shared: one thread is faster and keeps timings stable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    """family name -> checkpoint path of a 2-step dry run on the tiny config (trained on first use)."""
    root = tmp_path_factory.mktemp("dry")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = baselines.train(name, config=tiny_config(name), out=root / f"{name}.pt", dry_run=True,
                                          device="cpu", log=lambda message: None)
        return cache[name]

    return get


def test_registry_names():
    assert FAMILIES.names() == sorted(["dcgan", "wgan-gp", "vae", "glo", "flow", "cgan", "cyclegan"])
    with pytest.raises(ConfigError, match="dcgan"):
        FAMILIES.get("dcgan2")


# -- the loop: every family's dry run --------------------------------------------------------------
@needs_data
@pytest.mark.parametrize("name", ALL)
def test_dry_run_writes_a_plain_checkpoint(dry, name):
    path = dry(name)
    raw = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors/dicts only
    assert raw["format"] == "genbench-baseline" and raw["format_version"] == ckpt_mod.FORMAT_VERSION
    assert raw["family"] == name and raw["steps"] == 2 and raw["dry_run"] is True
    assert raw["dataset"] == "fashion-mnist:train" and raw["device"] == "cpu"
    assert raw["genbench_version"] == importlib.metadata.version("genbench")
    assert raw["wall_time_s"] > 0
    # The resolved config lists every option, defaults included.
    cls = FAMILIES.get(name)
    assert set(raw["config"]["model"]) == set(cls.options_cls.__dataclass_fields__)
    assert raw["config"]["train"]["steps"] == 2 and raw["config"]["train"]["batch_size"] == 8
    assert all(np.isfinite(v) for h in raw["history"] for k, v in h.items())
    model = load_checkpoint(path)
    images = sample_images(model, 5, seed=0)
    assert images.shape == (5, 28, 28) and images.dtype == np.uint8


@needs_data
def test_dry_run_mixed_precision_path_runs(tmp_path):
    out = baselines.train("dcgan", config=tiny_config("dcgan", amp="bf16"), out=tmp_path / "d.pt", dry_run=True,
                          device="cpu", log=lambda m: None)
    raw = torch.load(out, weights_only=True)
    assert raw["precision"] == "bfloat16-autocast"
    assert np.isfinite(raw["history"][-1]["loss_d"])


@needs_data
def test_cli_dry_run_and_error_exit(tmp_path):
    from click.testing import CliRunner

    config = tmp_path / "vae.toml"
    config.write_text('family = "vae"\n[data]\neval_n = 8\n[train]\ndry_run_steps = 1\ndry_run_batch_size = 4\n'
                      "[model]\nz_dim = 2\nch = 2\n")
    out = tmp_path / "vae.pt"
    result = CliRunner().invoke(main, ["baselines", "train", "vae", "--config", str(config), "--out", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert out.exists() and torch.load(out, weights_only=True)["steps"] == 1
    config.write_text('family = "vae"\n[model]\nzdim = 2\n')
    result = CliRunner().invoke(main, ["baselines", "train", "vae", "--config", str(config), "--dry-run"])
    assert result.exit_code == 2 and "model.zdim" in result.output


# -- configs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_bundled_configs_resolve(name):
    run = load_run_config(name)
    assert run.family == name and run.source.endswith(f"{name}.toml")


@pytest.mark.parametrize(
    "text, key",
    [
        ('[model]\nzdim = 3\n', "model.zdim"),
        ('[train]\nstep = 3\n', "train.step"),
        ('[data]\nsplit = "x"\n', "data.split"),
        ('optimizer = "sgd"\n', "optimizer"),
    ],
)
def test_unknown_config_key_is_refused_naming_key_and_file(tmp_path, text, key):
    path = tmp_path / "bad.toml"
    path.write_text('family = "dcgan"\n' + text)
    with pytest.raises(ConfigError) as info:
        load_run_config("dcgan", path)
    assert key in str(info.value) and str(path) in str(info.value)


def test_config_type_and_family_errors(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[model]\nz_dim = "big"\n')
    with pytest.raises(ConfigError, match=r"model\.z_dim: expected int, got str"):
        load_run_config("dcgan", path)
    path.write_text('family = "vae"\n')
    with pytest.raises(ConfigError, match="family = 'vae'"):
        load_run_config("dcgan", path)
    path.write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_run_config("dcgan", path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_run_config("dcgan", tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="model.decoder"):
        load_run_config("vae", {"model": {"decoder": "poisson"}})


# -- sampling -------------------------------------------------------------------------------------
@needs_data
@pytest.mark.parametrize("name", ALL)
def test_sampling_is_deterministic_and_batch_size_independent(dry, name):
    model = load_checkpoint(dry(name))
    reference = sample_images(model, 13, seed=5, batch_size=256)
    floats = model.sample(13, torch.Generator().manual_seed(5))  # one batch, as batch_size=256
    np.testing.assert_array_equal(quantize(floats, model.output_range), reference)
    for batch_size in (1, 4, 13):  # other batches: equal up to float32 rounding at quantisation boundaries
        assert_same_samples(sample_images(model, 13, seed=5, batch_size=batch_size), reference, floats,
                            model.output_range)
    np.testing.assert_array_equal(sample_images(dry(name), 13, seed=5), reference)  # path instead of model
    # Another seed gives other images (compared before quantisation: a 2-step model may be nearly constant).
    assert not torch.equal(model.sample(13, torch.Generator().manual_seed(5)),
                           model.sample(13, torch.Generator().manual_seed(6)))
    # A prefix of a longer run is not promised (latents are drawn for all n), but the source is identical.
    source = GeneratorSource(model, 13, seed=5, batch_size=4)
    batch = source.read_batch(0, 13)
    assert batch.shape == (13, 3, 28, 28) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch[:, 0], batch[:, 2])
    assert_same_samples(batch[:, 0], reference, floats, model.output_range)
    np.testing.assert_array_equal(np.stack([source.read(i) for i in range(13)]), batch)  # the same batches
    assert_same_samples(source.read_batch(3, 9)[:, 0], batch[3:9, 0], floats[3:9], model.output_range)
    assert len(source) == 13 and source.key(3) == f"{name}-seed5-000003"
    assert len(source.fingerprint()) == 64
    assert source.fingerprint() != GeneratorSource(model, 13, seed=6).fingerprint()
    with pytest.raises(IndexError):
        source.read(13)


@needs_data
def test_conditional_labels(dry):
    model = load_checkpoint(dry("cgan"))
    _, drawn = sample_images_and_labels(model, 40, seed=2)
    assert drawn.shape == (40,) and drawn.min() >= 0 and drawn.max() <= 9 and len(set(drawn.tolist())) > 3
    expected = torch.Generator().manual_seed(2)
    torch.randn(40, model.options.z_dim, generator=expected)  # z is drawn first, then the labels
    np.testing.assert_array_equal(drawn, torch.randint(0, 10, (40,), generator=expected).numpy())
    given = np.arange(40) % 10
    images2, labels2 = sample_images_and_labels(model, 40, seed=2, labels=given)
    np.testing.assert_array_equal(labels2, given)
    source = GeneratorSource(model, 40, seed=2, labels=given)
    assert source.has_labels and source.label(7) == 7
    np.testing.assert_array_equal(source.labels(), given)
    np.testing.assert_array_equal(source.read_batch(0, 40)[:, 0], images2)
    with pytest.raises(InputError, match="class labels in"):
        sample_images(model, 3, seed=0, labels=[0, 1, 10])
    with pytest.raises(InputError, match="3 integer class labels"):
        sample_images(model, 3, seed=0, labels=[0, 1])
    with pytest.raises(InputError, match="not class-conditional"):
        sample_images(load_checkpoint(dry("dcgan")), 3, seed=0, labels=[0, 1, 2])


@needs_data
def test_cyclegan_translates_held_out_source_images(dry):
    model = load_checkpoint(dry("cyclegan"))
    test_labels = baselines.data.load_arrays("fashion-mnist:test").labels
    index = model.source_index.numpy()
    assert len(index) == int((test_labels == 7).sum()) and (test_labels[index] == 7).all()
    source = GeneratorSource(model, 2 * len(index) + 3, seed=0)
    assert source.label(0) == 5  # the target class
    order = model.draw(2 * len(index), torch.Generator().manual_seed(0))["source"].numpy()
    assert sorted(order[: len(index)]) == list(range(len(index)))  # each source once per pass


def test_quantize_matches_torchvision_save_image(tmp_path):
    from PIL import Image
    from torchvision.utils import save_image

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 28, 28, generator=g) * 2.4 - 1.2  # beyond [-1, 1] to test clamping
    x[0, 0, 0, :5] = torch.tensor([-1.0, 1.0, 0.0, 1 / 255 - 1, 2 * (127.5 / 255) - 1])
    save_image(x, tmp_path / "a.png", normalize=True, value_range=(-1, 1), padding=0)
    png = np.asarray(Image.open(tmp_path / "a.png"))[..., 0]
    np.testing.assert_array_equal(quantize(x, (-1.0, 1.0))[0], png)
    y = torch.rand(1, 1, 28, 28, generator=g) * 1.2 - 0.1
    save_image(y, tmp_path / "b.png", padding=0)
    np.testing.assert_array_equal(quantize(y, (0.0, 1.0))[0], np.asarray(Image.open(tmp_path / "b.png"))[..., 0])


# -- family internals against independent computations --------------------------------------------
@needs_data
def test_glo_gaussian_fit_matches_numpy_covariance(dry):
    model = load_checkpoint(dry("glo"))
    codes = model.nets["codes"].z.weight.detach().double().numpy()
    fit = model.nets["latent_fit"]
    np.testing.assert_allclose(fit.mean.numpy(), codes.mean(0), atol=1e-6)
    cov = (fit.chol @ fit.chol.T).double().numpy()
    np.testing.assert_allclose(cov, np.cov(codes, rowvar=False) + 1e-6 * np.eye(codes.shape[1]), atol=1e-6)
    assert np.linalg.norm(codes, axis=1).max() <= 1 + 1e-5  # projected onto the unit ball
    images = model.nets["codes"].image_index.numpy()
    assert len(set(images.tolist())) == 64


@needs_data
def test_glo_mixture_fit_is_the_em_fit_of_its_codes_and_samples_deterministically(tmp_path):
    from scipy.stats import multivariate_normal

    from genbench.baselines.gmm import fit_gmm

    config = tiny_config("glo")
    config["model"] = {**config["model"], "latent_fit": "gmm", "gmm_components": 3}
    path = baselines.train("glo", config=config, out=tmp_path / "glo.pt", dry_run=True, device="cpu",
                           log=lambda message: None)
    model = load_checkpoint(path)
    codes = model.nets["codes"].z.weight.detach().double()
    fit = model.nets["latent_fit"]
    want = fit_gmm(codes, 3, seed=1)  # the run's seed
    torch.testing.assert_close(fit.weights.double(), want.weights, atol=1e-6, rtol=0)
    torch.testing.assert_close(fit.means.double(), want.means, atol=1e-6, rtol=0)
    # The stored mixture's mean log-likelihood of the codes, by scipy, is the one EM reached.
    covs = (fit.chols.double() @ fit.chols.double().transpose(1, 2)).numpy()
    density = sum(float(w) * multivariate_normal(m.numpy(), c).pdf(codes.numpy())
                  for w, m, c in zip(fit.weights.double(), fit.means.double(), covs))
    assert np.log(density).mean() == pytest.approx(want.log_likelihood, rel=1e-4)
    np.testing.assert_array_equal(sample_images(model, 9, seed=2), sample_images(path, 9, seed=2))
    with pytest.raises(ConfigError, match="model.latent_fit = 'kde'"):
        load_run_config("glo", {"model": {"latent_fit": "kde"}})
    with pytest.raises(ConfigError, match="model.gmm_components"):
        load_run_config("glo", {"model": {"latent_fit": "gmm", "gmm_components": 0}})


@needs_data
def test_vae_mixture_fit_is_the_em_fit_of_the_training_posterior_means(tmp_path):
    from genbench.baselines.data import load_arrays
    from genbench.baselines.gmm import fit_gmm

    config = tiny_config("vae")
    config["model"] = {**config["model"], "latent_fit": "gmm", "gmm_components": 2}
    path = baselines.train("vae", config=config, out=tmp_path / "vae.pt", dry_run=True, device="cpu",
                           log=lambda message: None)
    model = load_checkpoint(path)
    train = load_arrays("fashion-mnist:train")
    with torch.no_grad():
        means = model.nets["encoder"](torch.tensor(train.images).float().div(255).unsqueeze(1))[0].double()
    want = fit_gmm(means, 2, seed=1)
    fit = model.nets["latent_fit"]
    torch.testing.assert_close(fit.weights.double(), want.weights, atol=1e-5, rtol=0)
    torch.testing.assert_close(fit.means.double(), want.means, atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(sample_images(model, 9, seed=2), sample_images(path, 9, seed=2))
    with pytest.raises(ConfigError, match="model.latent_fit = 'flow'"):
        load_run_config("vae", {"model": {"latent_fit": "flow"}})


@needs_data
def test_flow_realnvp_layout_still_trains_loads_and_samples(tmp_path):
    config = tiny_config("flow")
    config["model"] = {"arch": "realnvp", "hidden_ch": 4}
    path = baselines.train("flow", config=config, out=tmp_path / "flow.pt", dry_run=True, device="cpu",
                           log=lambda message: None)
    model = load_checkpoint(path)
    assert type(model.nets["flow"]).__name__ == "RealNVP"
    assert 0 < model.info["metrics"]["test_bpd"] < 16
    np.testing.assert_array_equal(sample_images(model, 5, seed=3), sample_images(path, 5, seed=3))


@pytest.mark.parametrize(("model", "message"), [
    ({"arch": "maf"}, r"model\.arch must be one of realnvp, glow, got 'maf'"),
    ({"depth": 0}, r"model\.depth must be >= 1, got 0"),
])
def test_flow_options_out_of_range_are_refused(model, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config("flow", {"model": model})


@pytest.mark.parametrize("arch", ["realnvp", "glow"])
def test_flow_is_invertible_and_logdet_matches_autograd_jacobian(arch):
    from genbench.baselines.families.flow import RealNVP
    from genbench.baselines.families.glow_net import Glow

    with torch.random.fork_rng(devices=[]):  # seeded initial weights, without touching the global generator
        torch.manual_seed(0)
        flow = (Glow(hidden=4, depth=2) if arch == "glow" else RealNVP(hidden=4)).double()
    gen = torch.Generator().manual_seed(1)
    y = torch.randn(2, 1, 28, 28, dtype=torch.float64, generator=gen)
    flow.train()
    flow(3.0 * y + 1.0)  # glow: ActNorm's data-dependent start (on other data, so it is not the identity on y)
    flow.eval()
    with torch.no_grad():
        for p in flow.parameters():  # leave the identity start: random weights everywhere
            p.add_(0.1 * torch.randn(p.shape, dtype=p.dtype, generator=gen))
    z, logdet = flow(y)
    torch.testing.assert_close(flow.reverse(z), y)
    jac = torch.autograd.functional.jacobian(lambda v: flow(v.view(1, 1, 28, 28))[0][0], y[0].flatten(), vectorize=True)
    torch.testing.assert_close(logdet[0], torch.linalg.slogdet(jac)[1])


def test_glow_actnorm_starts_from_the_first_batch_only():
    from genbench.baselines.families.glow_net import ActNorm

    norm = ActNorm(3).train()
    x = torch.randn(16, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 2.0, 5.0]).view(
        1, 3, 1, 1) + 4.0
    y, _ = norm(x)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)
    before = norm.bias.detach().clone()
    norm(10.0 * x)
    torch.testing.assert_close(norm.bias.detach(), before)  # the second batch does not re-initialise


# -- checkpoint errors ----------------------------------------------------------------------------
@needs_data
def test_bad_checkpoints_give_input_error(dry, tmp_path):
    good = dry("dcgan")
    data = good.read_bytes()
    cases = {}
    cases["truncated"] = data[: len(data) // 2]
    cases["garbage"] = b"not a checkpoint at all" * 10
    for name, payload in cases.items():
        (tmp_path / f"{name}.pt").write_bytes(payload)
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "state_dict.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "pickled_module.pt")
    raw = torch.load(good, weights_only=True)
    torch.save({**raw, "format_version": ckpt_mod.FORMAT_VERSION + 1}, tmp_path / "newer.pt")
    torch.save({**raw, "family": "stylegan"}, tmp_path / "unknown_family.pt")
    torch.save({**raw, "family": "wgan-gp", "config": {**raw["config"], "family": "wgan-gp",
                                                        "model": TINY_MODEL["wgan-gp"]}}, tmp_path / "other_model.pt")
    expected = {
        "truncated": "truncated or corrupt", "garbage": "truncated or corrupt",
        "state_dict": "not a genbench baseline checkpoint", "foreign": "not a genbench baseline checkpoint",
        "pickled_module": "not a genbench baseline checkpoint", "newer": "newer than this genbench",
        "unknown_family": "unknown family", "other_model": "wgan-gp checkpoint should hold networks",
    }
    for name, message in expected.items():
        with pytest.raises(InputError, match=message):
            load_checkpoint(tmp_path / f"{name}.pt")
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


@needs_data
def test_mismatched_network_shapes_give_input_error(dry, tmp_path):
    raw = torch.load(dry("dcgan"), weights_only=True)
    raw["config"]["model"]["g_ch"] = 6  # the stored networks were built with g_ch = 4
    torch.save(raw, tmp_path / "x.pt")
    with pytest.raises(InputError, match="does not match the dcgan options"):
        load_checkpoint(tmp_path / "x.pt")


# -- bundled checkpoints --------------------------------------------------------------------------
def bundled_entries() -> dict:
    return ckpt_mod.read_manifest()["checkpoints"]


def test_every_family_has_a_bundled_checkpoint():
    assert sorted(bundled_entries()) == sorted([*ALL, *VARIANTS])


def test_bundled_checkpoints_together_stay_under_40_mb():
    sizes = {entry["file"]: (ckpt_mod.CHECKPOINT_DIR / entry["file"]).stat().st_size for entry in bundled_entries().values()}
    assert sum(sizes.values()) < 40e6, sizes


@needs_data  # cyclegan translates held-out Fashion-MNIST images
def test_a_sampling_only_checkpoint_samples_like_the_full_one(tmp_path, dry):
    full = dry("cyclegan")
    ckpt = torch.load(full, map_location="cpu", weights_only=True)
    family = FAMILIES.get("cyclegan")
    small = {**ckpt, "state": family.sampling_state(ckpt["state"])}
    assert set(small["state"]["nets"]) == {"g_ab"}
    ckpt_mod.save_checkpoint(small, tmp_path / "small.pt")
    model = load_checkpoint(tmp_path / "small.pt")
    assert set(model.nets) == {"g_ab"}
    np.testing.assert_array_equal(sample_images(model, 5, seed=3), sample_images(full, 5, seed=3))
    small["state"] = {**small["state"], "nets": {"g_ba": ckpt["state"]["nets"]["g_ba"]}}
    ckpt_mod.save_checkpoint(small, tmp_path / "wrong.pt")
    with pytest.raises(InputError, match="or only \\['g_ab'\\], to sample"):
        load_checkpoint(tmp_path / "wrong.pt")


@pytest.mark.parametrize("name", ALL)
def test_bundled_checkpoint_sha256_and_load(name):
    entry = bundled_entries().get(name)
    if entry is None:
        pytest.fail(f"{name} has no bundled checkpoint in {ckpt_mod.MANIFEST}")
    path = ckpt_mod.CHECKPOINT_DIR / entry["file"]
    assert ckpt_mod.sha256_file(path) == entry["sha256"]
    # A few MB each (cyclegan, the largest: 8.7 MB, its A -> B generator and its 1,000 source images).
    assert path.stat().st_size < 10 * 2**20
    model = load_checkpoint(name)
    assert model.info["steps"] == entry["steps"] and model.info["family"] == name
    assert model.info["dry_run"] is False
    images = sample_images(model, 4, seed=0)
    assert images.shape == (4, 28, 28) and images.std() > 0


def test_tampered_bundled_checkpoint_gives_weights_error(tmp_path, monkeypatch):
    entries = bundled_entries()
    if not entries:
        pytest.skip("no bundled checkpoints")
    name, entry = min(entries.items())
    copy = tmp_path / entry["file"]
    copy.write_bytes((ckpt_mod.CHECKPOINT_DIR / entry["file"]).read_bytes() + b"x")
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": 1, "checkpoints": {name: entry}}))
    monkeypatch.setattr(ckpt_mod, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setattr(ckpt_mod, "MANIFEST", tmp_path / "manifest.json")
    with pytest.raises(WeightsError, match="does not match"):
        load_checkpoint(name)
    copy.unlink()
    with pytest.raises(WeightsError, match="missing"):
        load_checkpoint(name)


# -- colour: the dcgan-stacked variant (DCGAN on Stacked Fashion-MNIST, 3 channels) ----------------
def stacked_tiny_config(**model: object) -> dict:
    return {
        "family": "dcgan",
        "seed": 1,
        "data": {"dataset": STACKED, "eval_dataset": ""},
        "train": {"dry_run_steps": 2, "dry_run_batch_size": 8},
        "model": {**TINY_MODEL["dcgan"], "channels": 3, **model},
    }


def test_stacked_variant_is_a_dcgan_config():
    assert baseline_names() == sorted([*ALL, *VARIANTS])
    assert FAMILIES.names() == ALL  # a variant is no family
    run = load_run_config("dcgan-stacked")
    assert run.family == "dcgan" and run.source.endswith("dcgan-stacked.toml")
    assert run.data.dataset == STACKED and run.model.channels == 3
    assert run.train.time_limit_s == 480.0
    # The same networks and optimiser as the gray dcgan config, apart from the channels.
    gray = load_run_config("dcgan")
    assert {**vars(gray.model), "channels": 3} == vars(run.model) and gray.model.channels == 1
    with pytest.raises(ConfigError, match="unknown baseline 'dcgan-stacked2'.*dcgan-stacked"):
        load_run_config("dcgan-stacked2")


@pytest.mark.parametrize(
    "name, config, message",
    [
        ("dcgan", {"data": {"dataset": STACKED, "eval_dataset": ""}},
         (r"model\.channels = 1 does not match data\.dataset = 'stacked-fashion-mnist:train', whose images have 3 "
          r"channels; set model\.channels = 3")),
        ("dcgan", {"model": {"channels": 3}},
         r"model\.channels = 3 does not match data\.dataset = 'fashion-mnist:train', whose images have 1 channel"),
        ("dcgan-stacked", {**stacked_tiny_config(), "data": {"dataset": STACKED, "eval_dataset": "fashion-mnist:test"}},
         r"model\.channels = 3 does not match data\.eval_dataset = 'fashion-mnist:test'"),
        ("dcgan", {"model": {"channels": 2}}, r"model\.channels must be 1 \(gray\) or 3 \(colour\), got 2"),
        ("vae", {"data": {"dataset": STACKED, "eval_dataset": ""}},
         r"data\.dataset = 'stacked-fashion-mnist:train' holds 3-channel images, but the vae family is gray-only"),
        ("dcgan", {"data": {"dataset": "stacked-mnist:train"}}, r"data\.dataset = 'stacked-mnist:train': unknown"),
    ],
)
def test_channels_that_disagree_with_the_data_set_are_refused(name, config, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(name, config)


def test_channel_mismatch_in_a_config_file_names_file_and_option_on_the_cli(tmp_path):
    from click.testing import CliRunner

    path = tmp_path / "stacked.toml"
    text = (Path(baselines.config.CONFIG_DIR) / "dcgan-stacked.toml").read_text()
    path.write_text(text.replace("channels = 3", "channels = 1"))
    result = CliRunner().invoke(main, ["baselines", "train", "dcgan-stacked", "--config", str(path), "--dry-run"])
    assert result.exit_code == 2
    assert "model.channels = 1 does not match data.dataset" in result.output and str(path) in result.output


@needs_data
def test_stacked_batches_are_channels_first_copies_of_the_data():
    from genbench.baselines.data import BatchSampler, load_arrays

    arrays = load_arrays(STACKED)
    assert arrays.images.shape == (60000, 28, 28, 3) and arrays.channels == 3
    assert load_arrays("fashion-mnist:test").channels == 1
    batch = BatchSampler(arrays, 5, seed=0, device=torch.device("cpu")).next()
    assert batch.images.shape == (5, 3, 28, 28) and batch.images.dtype == torch.uint8
    for i, row in enumerate(batch.indices.tolist()):
        for c in range(3):  # channel c of the batch is channel c (R, G, B) of the stored image
            np.testing.assert_array_equal(batch.images[i, c].numpy(), arrays.images[row, :, :, c])


@pytest.fixture(scope="module")
def stacked_dry(tmp_path_factory):
    if not fashion_mnist_found():
        pytest.skip("Fashion-MNIST not found (apt-get install dataset-fashion-mnist, or set GENBENCH_DATA)")
    out = tmp_path_factory.mktemp("stacked") / "dcgan-stacked.pt"
    return baselines.train("dcgan-stacked", config=stacked_tiny_config(), out=out, dry_run=True, device="cpu",
                           log=lambda message: None)


def test_stacked_dry_run_samples_three_channels_deterministically(stacked_dry):
    raw = torch.load(stacked_dry, map_location="cpu", weights_only=True)
    assert raw["name"] == "dcgan-stacked" and raw["family"] == "dcgan" and raw["dataset"] == STACKED
    assert raw["config"]["model"]["channels"] == 3 and raw["steps"] == 2
    model = load_checkpoint(stacked_dry)
    assert model.run_name == "dcgan-stacked" and model.channels == 3
    assert model.nets["generator"].body[-2].out_channels == 3 and model.nets["discriminator"].body[0].in_channels == 3
    images = sample_images(model, 9, seed=3)
    assert images.shape == (9, 28, 28, 3) and images.dtype == np.uint8
    # quantize maps [B, 3, H, W] to channels-last, the same as the PNG a float image would be saved as.
    floats = model.sample(9, torch.Generator().manual_seed(3))
    assert floats.shape == (9, 3, 28, 28)
    np.testing.assert_array_equal(quantize(floats, model.output_range), images)
    for batch_size in (1, 4):  # other batches: equal up to float32 rounding at quantisation boundaries
        assert_same_samples(sample_images(model, 9, seed=3, batch_size=batch_size), images, floats, model.output_range)
    np.testing.assert_array_equal(sample_images(stacked_dry, 9, seed=3), images)
    assert not torch.equal(floats, model.sample(9, torch.Generator().manual_seed(4)))
    source = GeneratorSource(model, 9, seed=3, batch_size=4)
    batch = source.read_batch(0, 9)
    assert batch.shape == (9, 3, 28, 28) and batch.dtype == np.uint8
    assert_same_samples(batch.transpose(0, 2, 3, 1), images, floats, model.output_range)
    np.testing.assert_array_equal(source.read(5), batch[5])
    assert source.key(5) == "dcgan-stacked-seed3-000005" and len(source.fingerprint()) == 64
    assert sample_images_and_labels(model, 2, seed=0)[1] is None


def test_stacked_checkpoint_does_not_load_as_gray(stacked_dry, tmp_path):
    raw = torch.load(stacked_dry, weights_only=True)
    raw["config"]["model"]["channels"] = 1
    raw["config"]["data"]["dataset"] = "fashion-mnist:train"
    torch.save(raw, tmp_path / "x.pt")
    with pytest.raises(InputError, match="does not match the dcgan options"):
        load_checkpoint(tmp_path / "x.pt")


def test_quantize_rgb_matches_torchvision_save_image(tmp_path):
    from PIL import Image
    from torchvision.utils import save_image

    x = torch.rand(2, 3, 28, 28, generator=torch.Generator().manual_seed(1)) * 2.4 - 1.2
    out = quantize(x, (-1.0, 1.0))
    assert out.shape == (2, 28, 28, 3)
    for i in range(2):
        save_image(x[i], tmp_path / f"{i}.png", normalize=True, value_range=(-1, 1), padding=0)
        np.testing.assert_array_equal(out[i], np.asarray(Image.open(tmp_path / f"{i}.png").convert("RGB")))
    with pytest.raises(InputError, match=r"\[B, 1 or 3, H, W\]"):
        quantize(torch.zeros(1, 2, 28, 28), (-1.0, 1.0))


def test_bundled_stacked_checkpoint_loads_and_samples_colour():
    entry = bundled_entries().get("dcgan-stacked")
    if entry is None:
        pytest.fail(f"dcgan-stacked has no bundled checkpoint in {ckpt_mod.MANIFEST}")
    path = ckpt_mod.CHECKPOINT_DIR / entry["file"]
    assert entry["file"] == "dcgan-stacked.pt" and entry["family"] == "dcgan"
    assert ckpt_mod.sha256_file(path) == entry["sha256"] and path.stat().st_size < 8 * 2**20
    assert entry["config"]["data"]["dataset"] == STACKED and entry["config"]["model"]["channels"] == 3
    assert entry["command"] == "python -m genbench.baselines dcgan-stacked --bundle --threads 1"
    model = load_checkpoint("dcgan-stacked")
    assert model.name == "dcgan" and model.run_name == "dcgan-stacked" and model.info["dry_run"] is False
    assert model.info["steps"] == entry["steps"] and model.info["dataset"] == STACKED
    images = sample_images(model, 6, seed=0)
    assert images.shape == (6, 28, 28, 3) and images.dtype == np.uint8 and images.std() > 0
    assert_same_samples(sample_images("dcgan-stacked", 6, seed=0, batch_size=2), images,
                        model.sample(6, torch.Generator().manual_seed(0)), model.output_range)
    assert not np.array_equal(images[..., 0], images[..., 1])  # the channels are not one gray image


def test_list_and_leaderboard_keep_the_stacked_variant_off_the_gray_board():
    from genbench.baselines.board import baseline_row_specs

    rows = {r["name"]: r for r in baselines.list_families()}
    assert sorted(rows) == sorted([*ALL, *VARIANTS])
    stacked = rows["dcgan-stacked"]
    assert stacked["family"] == "dcgan" and stacked["dataset"] == STACKED and stacked["channels"] == 3
    assert stacked["checkpoint"] is not None and stacked["config"].endswith("dcgan-stacked.toml")
    assert all(rows[name]["dataset"] == "fashion-mnist:train" and rows[name]["channels"] == 1 for name in ALL)
    assert [s.name for s in baseline_row_specs(["dcgan", "dcgan-stacked"])] == ["dcgan"]


def test_cli_list_and_sample_folder_of_the_stacked_variant(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    listed = CliRunner().invoke(main, ["baselines", "list"], catch_exceptions=False)
    assert listed.exit_code == 0 and "dcgan-stacked" in listed.output
    result = CliRunner().invoke(main, ["baselines", "sample", "dcgan-stacked", "-n", "3", "-o", str(tmp_path / "s")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    png = np.asarray(Image.open(tmp_path / "s" / "000001.png"))
    np.testing.assert_array_equal(png, sample_images("dcgan-stacked", 3, seed=0)[1])


def test_cli_sample_npz_of_the_stacked_variant(tmp_path):
    from click.testing import CliRunner

    out = tmp_path / "s.npz"
    result = CliRunner().invoke(main, ["baselines", "sample", "dcgan-stacked", "-n", "3", "-o", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with np.load(out) as data:
        np.testing.assert_array_equal(data["images"], sample_images("dcgan-stacked", 3, seed=0))


def test_spread_table_explains_a_range_that_prints_as_zero():
    from genbench.baselines.spread import to_markdown

    # the same 1000 images in another order give an FD that differs only in the last bits
    same = {"name": "cyclegan", "checkpoint": "bundled", "n": 1000, "values": [68.77, 68.77 + 1e-12, 68.77],
            "mean": 68.77, "std": 5e-13, "range": 1e-12}
    moving = dict(same, name="dcgan", values=[44.78, 46.22, 44.34], range=1.88, std=0.98)
    assert "A spread of 0" in to_markdown([moving, same], [0, 1, 2], "cmd")
    assert "A spread of 0" not in to_markdown([moving], [0, 1, 2], "cmd")


def test_sampling_more_than_the_distinct_sources_is_refused_unless_repeats_are_allowed(tmp_path):
    from click.testing import CliRunner

    from genbench.cli.app import main
    from genbench.errors import ConfigError

    model = load_checkpoint("cyclegan")  # bundled: each of its 1,000 held-out sneakers translated once
    distinct = model.distinct_samples()
    assert distinct == 1000
    with pytest.raises(ConfigError, match=r"1000 distinct held-out source images, so 1 of the 1001 samples"):
        sample_images(model, distinct + 1, seed=0)
    out = tmp_path / "s.npz"
    refused = CliRunner().invoke(main, ["baselines", "sample", "cyclegan", "-n", "1001", "-o", str(out)])
    assert refused.exit_code == 2 and not out.exists()
    assert "-n 1000 or less" in refused.stderr and "--allow-repeats" in refused.stderr
    allowed = CliRunner().invoke(main, ["baselines", "sample", "cyclegan", "-n", "1001", "--allow-repeats", "-q",
                                        "-o", str(out)], catch_exceptions=False)
    assert allowed.exit_code == 0, allowed.output
    assert "1 of the 1001 samples repeat earlier ones; 1000 are distinct" in allowed.stderr  # said even with -q
    with np.load(out) as data:
        images = data["images"]
    assert len(images) == 1001 and len(np.unique(images.reshape(len(images), -1), axis=0)) == 1000


def test_train_and_spread_are_verbs_of_the_baselines_group(tmp_path):
    from click.testing import CliRunner

    listed = CliRunner().invoke(main, ["baselines", "--help"])
    assert listed.exit_code == 0 and "train" in listed.output and "spread" in listed.output
    result = CliRunner().invoke(main, ["baselines", "spread", "--out", str(tmp_path / "s.md"), "--seeds", "1"])
    assert result.exit_code == 2 and "a spread needs at least two seeds" in result.output
    assert not (tmp_path / "s.md").exists()
    result = CliRunner().invoke(main, ["baselines", "train", "dcgan", "--bundle", "--dry-run"])
    assert result.exit_code == 2 and "--bundle" in result.output

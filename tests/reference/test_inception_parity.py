"""The FID Inception port against torch-fidelity, pytorch-fid and clean-fid, on seeded random weights.

The real TF weights cannot be downloaded here, so one seeded random state dict with
O(1) activations is saved to a file and loaded by every implementation. Each check
compares per-image pool3 features and unbiased logits (tolerance 1e-4 relative).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from genbench.errors import ConfigError, InputError, WeightsError
from genbench.features import fast_cpu
from genbench.features.base import EXTRACTORS
from genbench.features.inception import (
    InceptionV3Extractor,
    InceptionV3Network,
    adapt_state_dict,
    build_inception,
)
from genbench.features.preprocess import get_preprocessing

TOL = 1e-4


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Keep ONNX exports and weights out of the user's cache."""
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENBENCH_INCEPTION_WEIGHTS", raising=False)


def _ours(weights_file, preprocessing: str, backend: str = "torch") -> InceptionV3Extractor:
    path, _ = weights_file
    return build_inception(weights=path, preprocessing=preprocessing, backend=backend, allow_unverified=True)


def _mixed(small_images: torch.Tensor, large_image: torch.Tensor) -> list[torch.Tensor]:
    return [*small_images, large_image]


# --------------------------------------------------------------------------- against other libraries


@pytest.mark.reference
def test_tf1_bilinear_matches_torch_fidelity(inception_weights_file, small_images, large_image, rel_err):
    tfi = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    path, _ = inception_weights_file
    theirs = tfi.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path)
    )
    with torch.no_grad():
        f_small, l_small = theirs(small_images)
        f_large, l_large = theirs(large_image[None])
    ref_features = torch.cat([f_small, f_large])
    ref_logits = torch.cat([l_small, l_large])

    out = _ours(inception_weights_file, "tf1-bilinear")(_mixed(small_images, large_image))
    assert out["features"].shape == (5, 2048) and out["features"].dtype == torch.float32
    assert out["logits"].shape == (5, 1008) and out["logits"].dtype == torch.float32
    assert float(ref_features.std(dim=0).mean()) > 1e-3  # images give distinct, non-degenerate features
    assert rel_err(out["features"], ref_features) < TOL
    assert rel_err(out["logits"], ref_logits) < TOL


@pytest.mark.reference
def test_torch_bilinear_matches_pytorch_fid(inception_weights_file, inception_state, small_images, large_image,
                                            rel_err, monkeypatch):
    pfi = pytest.importorskip("pytorch_fid.inception")
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *args, **kwargs: dict(inception_state))
    theirs = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    with torch.no_grad():  # pytorch-fid reads images with ToTensor: uint8 / 255
        f_small = theirs(small_images.float() / 255)[0].flatten(1)
        f_large = theirs(large_image[None].float() / 255)[0].flatten(1)
    ref_features = torch.cat([f_small, f_large])
    ref_logits = ref_features.double() @ inception_state["fc.weight"].double().T

    out = _ours(inception_weights_file, "torch-bilinear")(_mixed(small_images, large_image))
    assert rel_err(out["features"], ref_features) < TOL
    assert rel_err(out["logits"], ref_logits) < TOL


@pytest.mark.reference
def test_pil_bicubic_matches_clean_fid_resize(small_images, large_image):
    resize = pytest.importorskip("cleanfid.resize")
    clean = resize.make_resizer("PIL", False, "bicubic", (299, 299))
    policy = get_preprocessing("pil-bicubic")
    for batch in (small_images, large_image[None]):
        ours = policy(batch, 299)
        for image, mine in zip(batch, ours):
            resized = torch.from_numpy(clean(image.permute(1, 2, 0).numpy())).permute(2, 0, 1)
            expected = (resized - 128) / 128  # clean-fid's InceptionV3W normalisation
            assert mine.shape == expected.shape
            assert float((mine - expected).abs().max()) <= 1e-6


@pytest.mark.reference
def test_state_dict_layout_matches_both_libraries(inception_state, monkeypatch):
    pfi = pytest.importorskip("pytorch_fid.inception")
    tfi = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *args, **kwargs: dict(inception_state))
    ours = set(InceptionV3Network().state_dict())
    assert set(pfi.fid_inception_v3().state_dict()) == ours
    monkeypatch.setattr(tfi, "load_state_dict_from_url", lambda *args, **kwargs: dict(inception_state))
    assert set(tfi.FeatureExtractorInceptionV3("x", ["2048"]).state_dict()) == ours


# --------------------------------------------------------------------------- fast paths against the eager network


@pytest.fixture(scope="module")
def eager_reference(inception_state, small_images, large_image):
    """Plain eager NCHW network on tf1-bilinear inputs: (inputs, pool3, logits)."""
    net = InceptionV3Network().eval()
    net.load_state_dict(inception_state)
    policy = get_preprocessing("tf1-bilinear")
    x = torch.cat([policy(small_images[:2], 299), policy(large_image[None], 299)])
    with torch.no_grad():
        pool3, logits = net(x)
    return x, pool3, logits


@pytest.mark.reference
def test_onnxruntime_backend_equals_eager_and_is_cached(inception_weights_file, eager_reference, rel_err,
                                                        monkeypatch):
    pytest.importorskip("onnxruntime")
    x, pool3, logits = eager_reference
    ext = _ours(inception_weights_file, "tf1-bilinear", backend="onnxruntime")
    assert ext.backend == "onnxruntime"
    assert ext.runner.path.is_file() and inception_weights_file[1][:32] in ext.runner.path.name
    got_pool3, got_logits = ext.runner(x)
    assert rel_err(got_pool3, pool3) < TOL
    assert rel_err(got_logits, logits) < TOL

    # Under autocast (the engine's --precision bf16) the eager network runs, not the float32 ONNX graph.
    one = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 3, 75, 75), dtype=np.uint8))
    full = ext(one)["features"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reduced = ext(one)["features"]
    assert reduced.dtype == torch.float32
    assert 1e-4 < rel_err(reduced, full) < 0.1

    def no_export(*args, **kwargs):
        raise AssertionError("the cached ONNX export should have been reused")

    monkeypatch.setattr(fast_cpu, "export_onnx", no_export)
    again = _ours(inception_weights_file, "tf1-bilinear", backend="auto")
    assert again.backend == "onnxruntime"


@pytest.mark.reference
def test_torch_channels_last_backend_equals_eager(inception_state, eager_reference, rel_err):
    x, pool3, logits = eager_reference
    net = InceptionV3Network().eval()
    net.load_state_dict(inception_state)
    runner = fast_cpu.TorchRunner(net, torch.device("cpu"))
    assert runner.channels_last
    got_pool3, got_logits = runner(x)
    assert rel_err(got_pool3, pool3) < TOL
    assert rel_err(got_logits, logits) < TOL


# --------------------------------------------------------------------------- backend selection (tiny stand-in net)


class _Tiny(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3)), x.sum(dim=(2, 3))


def test_auto_backend_falls_back_to_torch_without_onnxruntime(monkeypatch):
    monkeypatch.setattr(fast_cpu, "onnxruntime_available", lambda: False)
    assert fast_cpu.make_runner(_Tiny(), "auto", torch.device("cpu"), "0" * 64).backend == "torch"
    with pytest.raises(ConfigError, match="pip install onnxruntime onnx"):
        fast_cpu.make_runner(_Tiny(), "onnxruntime", torch.device("cpu"), "0" * 64)


def test_auto_backend_needs_onnx_for_a_first_export(monkeypatch):
    monkeypatch.setattr(fast_cpu, "onnxruntime_available", lambda: True)
    monkeypatch.setattr(fast_cpu, "_can_export", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fast_cpu.make_runner(_Tiny(), "auto", torch.device("cpu"), "0" * 64).backend == "torch"
    with pytest.raises(ConfigError, match="onnxruntime and onnx packages"):
        fast_cpu.make_runner(_Tiny(), "onnxruntime", torch.device("cpu"), "0" * 64)


def test_auto_backend_warns_and_falls_back_when_export_fails(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("exporter missing")

    monkeypatch.setattr(fast_cpu, "onnxruntime_available", lambda: True)
    monkeypatch.setattr(fast_cpu, "OnnxRuntimeRunner", broken)
    with pytest.warns(RuntimeWarning, match="exporter missing"):
        runner = fast_cpu.make_runner(_Tiny(), "auto", torch.device("cpu"), "0" * 64)
    assert runner.backend == "torch"


def test_backend_choice_errors():
    with pytest.raises(ConfigError, match="auto, torch, onnxruntime"):
        fast_cpu.make_runner(_Tiny(), "tensorrt", torch.device("cpu"), "0" * 64)
    with pytest.raises(ConfigError, match="CPU only"):
        fast_cpu.make_runner(_Tiny(), "onnxruntime", torch.device("meta"), "0" * 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fast_cpu.make_runner(_Tiny(), "auto", torch.device("meta"), "0" * 64).backend == "torch"


# --------------------------------------------------------------------------- the extractor's interface


@pytest.fixture(scope="module")
def extractor(inception_state) -> InceptionV3Extractor:
    return InceptionV3Extractor(inception_state, "ab" * 32, "tf1-bilinear", backend="torch")


def test_registered_as_default_name_with_fid_metric_names():
    assert EXTRACTORS.get("inception-v3") is build_inception
    assert InceptionV3Extractor.metric_names.fd == "fid"
    assert InceptionV3Extractor.metric_names.is_ == "is"
    assert InceptionV3Extractor.metric_names.kid == "kid"


def test_identity_records_policy_and_actual_weights_hash(inception_weights_file):
    path, sha = inception_weights_file
    ext = build_inception(weights=path, preprocessing="pil-bicubic", backend="torch", allow_unverified=True)
    assert ext.identity().to_dict() == {
        "extractor": "inception-v3", "layer": "pool3", "preprocessing": "pil-bicubic",
        "weights_sha256": sha, "feature_dim": 2048,
    }
    assert not ext.training


def test_unverified_weights_are_refused_by_default(inception_weights_file):
    with pytest.raises(WeightsError, match="allow_unverified=True"):
        build_inception(weights=inception_weights_file[0])


def test_unknown_preprocessing_lists_names(inception_weights_file):
    with pytest.raises(ConfigError, match="pil-bicubic, tf1-bilinear, torch-bilinear"):
        build_inception(weights=inception_weights_file[0], preprocessing="bicubic", allow_unverified=True)


def test_wrong_keys_are_a_weights_error(inception_state):
    broken = {k: v for k, v in inception_state.items() if not k.startswith("Mixed_7c.branch_pool")}
    broken["extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match="missing.*Mixed_7c.branch_pool.*unexpected.*extra.weight"):
        adapt_state_dict(broken, InceptionV3Network(), "broken.pth")
    prefixed = {f"module.{k}": v for k, v in inception_state.items() if not k.endswith("num_batches_tracked")}
    adapted = adapt_state_dict(prefixed, InceptionV3Network())
    assert set(adapted) == set(inception_state)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(2, 3, 8, 8), "dtype uint8"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.int64), "dtype uint8"),
        (torch.zeros(2, 1, 8, 8, dtype=torch.uint8), r"\[B, 3, H, W\]"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), r"\[B, 3, H, W\]"),
        ([torch.zeros(3, 8, 8, dtype=torch.uint8), torch.zeros(8, 8, 3, dtype=torch.uint8)], r"images\[1\]"),
        ([torch.zeros(3, 8, 8, dtype=torch.uint8), np.zeros((3, 8, 8), dtype=np.float32)], r"images\[1\].*uint8"),
        ("image.png", "got str"),
    ],
)
def test_bad_inputs_raise_input_error(extractor, bad, message):
    with pytest.raises(InputError, match=message):
        extractor(bad)


def test_numpy_and_mixed_size_inputs_prepare_like_batches(extractor, small_images, large_image):
    batch = extractor.prepare(small_images)
    assert torch.equal(extractor.prepare(small_images.numpy()), batch)
    mixed = extractor.prepare([small_images[0], large_image, small_images[1]])
    assert torch.equal(mixed[0], batch[0]) and torch.equal(mixed[2], batch[1])
    assert torch.equal(mixed[1], extractor.prepare(large_image[None])[0])


def test_empty_batch_gives_empty_outputs(extractor):
    out = extractor(torch.zeros(0, 3, 32, 32, dtype=torch.uint8))
    assert out["features"].shape == (0, 2048) and out["logits"].shape == (0, 1008)

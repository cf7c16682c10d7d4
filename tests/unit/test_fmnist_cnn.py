"""The fmnist-cnn domain extractor: bundled weights, preprocessing policy, errors."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from genbench.errors import ConfigError, InputError, WeightsError
from genbench.features import fmnist_cnn
from genbench.features.base import EXTRACTORS
from genbench.features.fmnist_cnn import WEIGHTS_PATH, WEIGHTS_SHA256, build_fmnist_cnn, preprocess
from genbench.sources.datasets import open_dataset
from tests.conftest import fashion_mnist_found

HAVE_DATA = fashion_mnist_found()


@pytest.fixture(scope="module")
def extractor():
    return build_fmnist_cnn()


@pytest.fixture(scope="module")
def gray_images() -> np.ndarray:
    """64 gray 28x28 uint8 images: real test images where installed, else smooth random blobs."""
    if HAVE_DATA:
        return open_dataset("fashion-mnist:test").read_batch(0, 64)[:, 0]
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:28, 0:28]
    centres = rng.uniform(6, 22, size=(64, 2, 1, 1))
    blobs = np.exp(-((yy - centres[:, 0]) ** 2 + (xx - centres[:, 1]) ** 2) / 40.0)
    return (255 * blobs).astype(np.uint8)


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bundled_weights_identity(extractor):
    ident = extractor.identity().to_dict()
    assert ident == {
        "extractor": "fmnist-cnn",
        "layer": "penultimate",
        "preprocessing": "luma-bilinear28",
        "weights_sha256": sha256_of(WEIGHTS_PATH),
        "feature_dim": 128,
    }
    assert WEIGHTS_SHA256 == sha256_of(WEIGHTS_PATH)
    names = extractor.metric_names
    assert (names.fd, names.is_, names.kid) == ("fd_fmnist", "is_fmnist", "kid_fmnist")
    assert EXTRACTORS.get("fmnist-cnn") is build_fmnist_cnn
    record = json.loads(WEIGHTS_PATH.with_suffix(".json").read_text())
    assert record["weights_sha256"] == WEIGHTS_SHA256 and record["test_accuracy"] >= 0.92


@pytest.mark.skipif(not HAVE_DATA, reason="dataset-fashion-mnist not installed")
def test_accuracy_on_test_subset(extractor):
    src = open_dataset("fashion-mnist:test")
    out = extractor(torch.from_numpy(src.read_batch(0, 2000)))
    assert out["features"].shape == (2000, 128) and out["logits"].shape == (2000, 10)
    assert out["features"].dtype == torch.float32 and (out["features"] >= 0).all()  # post-ReLU
    accuracy = (out["logits"].argmax(1).numpy() == src.labels()[:2000]).mean()
    assert accuracy >= 0.9


def test_gray_repeated_to_rgb_equals_raw_gray_path(extractor, gray_images):
    rgb = np.repeat(gray_images[:, None], 3, axis=1)
    out = extractor(torch.from_numpy(rgb))
    # Raw gray path, written out independently: x / 255, then the Fashion-MNIST train mean/std.
    x = (torch.from_numpy(gray_images).float()[:, None] / 255.0 - 0.2860) / 0.3530
    with torch.no_grad():
        features, logits = extractor.net(x)
    torch.testing.assert_close(out["features"], features, rtol=0, atol=1e-6)
    torch.testing.assert_close(out["logits"], logits, rtol=0, atol=1e-6)


def test_colour_uses_bt601_luma(extractor):
    rgb = np.random.default_rng(1).integers(0, 256, size=(4, 3, 28, 28), dtype=np.uint8)
    luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]  # float64, not rounded
    x = torch.from_numpy(((luma / 255.0 - 0.2860) / 0.3530).astype(np.float32))[:, None]
    with torch.no_grad():
        expected = extractor.net(x)[0]
    torch.testing.assert_close(extractor(rgb)["features"], expected, rtol=1e-5, atol=1e-5)


def test_resize_matches_pil_antialiased_bilinear(gray_images):
    big = np.kron(gray_images[:4], np.ones((2, 2), np.uint8))  # 56x56, nearest-neighbour upscaled
    big = np.roll(big, 1, axis=2)  # so the downscale is not a trivial 2x2 average
    ours = preprocess(np.repeat(big[:, None], 3, axis=1))[:, 0].numpy() * 0.3530 + 0.2860
    for i in range(4):
        pil = Image.fromarray(big[i].astype(np.float32), mode="F").resize((28, 28), Image.Resampling.BILINEAR)
        np.testing.assert_allclose(ours[i] * 255.0, np.asarray(pil), atol=0.05)


@pytest.mark.skipif(not HAVE_DATA, reason="dataset-fashion-mnist not installed")
def test_upscaled_56_gives_close_features(extractor, gray_images):
    """A 2x pixel-replicated copy comes back through the antialiased downscale as a mildly blurred image:
    its features stay close (much closer than another image's), and the class mostly agrees."""
    small = np.repeat(gray_images[:, None], 3, axis=1)
    big = np.kron(small, np.ones((2, 2), np.uint8))  # [B, 3, 56, 56]
    a, b = extractor(small), extractor(big)
    rel = (a["features"] - b["features"]).norm(dim=1) / a["features"].norm(dim=1)
    other = extractor(np.roll(small, 1, axis=0))["features"]
    rel_other = (a["features"] - other).norm(dim=1) / a["features"].norm(dim=1)
    assert rel.median() < 0.4 and rel.median() < rel_other.median() / 3
    assert torch.nn.functional.cosine_similarity(a["features"], b["features"]).median() > 0.9
    assert (a["logits"].argmax(1) == b["logits"].argmax(1)).float().mean() >= 0.85


def test_mixed_sizes_list_equals_separate_batches(extractor, gray_images):
    small = np.repeat(gray_images[:2, None], 3, axis=1)
    big = np.repeat(np.kron(gray_images[2:4], np.ones((2, 2), np.uint8))[:, None], 3, axis=1)
    out = extractor([torch.from_numpy(small[0]), torch.from_numpy(big[0]), torch.from_numpy(small[1])])
    torch.testing.assert_close(out["features"][[0, 2]], extractor(small)["features"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["features"][1:2], extractor(big[:1])["features"], rtol=1e-5, atol=1e-5)


def test_stays_in_eval_mode_and_is_deterministic(extractor, gray_images):
    rgb = torch.from_numpy(np.repeat(gray_images[:8, None], 3, axis=1))
    extractor.train()
    assert not extractor.training and not extractor.net.training
    first = extractor(rgb)["features"]
    assert torch.equal(first, extractor(rgb)["features"])


def test_tampered_bundled_weights_raise(tmp_path, monkeypatch):
    tampered = tmp_path / "fmnist-cnn.pt"
    data = bytearray(WEIGHTS_PATH.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    monkeypatch.setattr(fmnist_cnn, "WEIGHTS_PATH", tampered)
    with pytest.raises(WeightsError, match=str(tampered)):
        build_fmnist_cnn()


def test_weights_path_records_its_sha(tmp_path):
    copy = tmp_path / "mine.pt"
    shutil.copyfile(WEIGHTS_PATH, copy)
    assert build_fmnist_cnn(weights=str(copy)).identity().weights_sha256 == sha256_of(copy)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pt"):
        build_fmnist_cnn(weights=str(junk))
    with pytest.raises(WeightsError, match="not found"):
        build_fmnist_cnn(weights=str(tmp_path / "missing.pt"))
    wrong = tmp_path / "wrong.pt"
    torch.save({"fc1.weight": torch.zeros(3)}, wrong)
    with pytest.raises(WeightsError, match="wrong.pt"):
        build_fmnist_cnn(weights=str(wrong))


@pytest.mark.parametrize(
    "bad",
    [
        torch.zeros(2, 3, 28, 28),  # float
        np.zeros((2, 3, 28, 28), np.float32),
        torch.zeros(2, 1, 28, 28, dtype=torch.uint8),  # one channel
        torch.zeros(3, 28, 28, dtype=torch.uint8),  # no batch axis
        [torch.zeros(3, 28, 28, dtype=torch.int64)],
    ],
)
def test_non_uint8_rgb_input_is_refused(extractor, bad):
    with pytest.raises(InputError, match="fmnist-cnn: expected"):
        extractor(bad)


def test_unknown_preprocessing_is_a_config_error():
    with pytest.raises(ConfigError, match="luma-bilinear28"):
        build_fmnist_cnn(preprocessing="bicubic299")


@pytest.mark.skipif(not HAVE_DATA, reason="dataset-fashion-mnist not installed")
def test_training_is_reproducible():
    from genbench.features.train_fmnist_cnn import state_dict_bytes, train

    def run(seed: int) -> bytes:
        net, history = train(
            seed,
            epochs=1,
            batch_size=64,
            lr=2e-3,
            weight_decay=5e-4,
            data_dir=None,
            limit=256,
            log=lambda message: None,
        )
        assert len(history) == 1 and not net.training
        return state_dict_bytes(net)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the training script does; also much faster on a shared CPU
    try:
        first = run(0)
        assert run(0) == first
        assert run(1) != first
    finally:
        torch.set_num_threads(threads)

"""CLIP image towers against torch-fidelity 0.4's ``FeatureExtractorCLIP`` and the CMMD reference's preprocessing.

torch-fidelity builds OpenAI's VisionTransformer from a state dict it reads out of a TorchScript archive;
here ``torch.jit.load`` is redirected to hand it seeded random weights in OpenAI's key layout (rounded to
float16 values, as OpenAI's checkpoints store them and as torch-fidelity casts them). The CMMD policy is
checked at the network input against the reference's ``io_util._center_crop_and_resize`` + ``/ 255`` +
scenic's ``normalize_image``, re-typed from google-research ``cmmd/``.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from genbench.errors import WeightsError
from genbench.features.clip import ARCHS, ClipExtractor, build_clip, random_state_dict
from genbench.features.vit_preprocess import CLIP_PREPROCESSING
from tests.unit.test_torchscript_state import assert_reads_like_torch, openai_like_archive

pytestmark = pytest.mark.reference
TOL = 1e-4
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def rel_err(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    ours, theirs = torch.as_tensor(ours).double(), torch.as_tensor(theirs).double()
    assert ours.shape == theirs.shape
    return float((ours - theirs).abs().max() / theirs.abs().mean())


def _images(seed: int, n: int, h: int, w: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for _ in range(n):
        freq = rng.uniform(0.05, 0.5, size=(3, 1, 1))
        wave = 127.5 + 90 * np.sin(freq * (xx + 0.5 * yy)[None] + rng.uniform(0, 6, size=(3, 1, 1)))
        out.append(np.clip(np.round(wave + rng.normal(0, 30, size=(3, h, w))), 0, 255).astype(np.uint8))
    return torch.from_numpy(np.stack(out))


def _torch_fidelity_clip(name: str, state: dict, embed_dim: int, monkeypatch, tmp_path):
    tfc = pytest.importorskip("torch_fidelity.feature_extractor_clip")

    class Archive:  # what torch.jit.load would return for OpenAI's file
        def state_dict(self):
            return {**state, "text_projection": torch.zeros(embed_dim, embed_dim)}

    monkeypatch.setattr(torch.jit, "load", lambda *args, **kwargs: Archive())
    path = tmp_path / "archive.pt"
    path.write_bytes(b"")
    return tfc.FeatureExtractorCLIP(name, ["clip"], feature_extractor_weights_path=str(path))


def test_vit_b32_matches_torch_fidelity(monkeypatch, tmp_path):
    arch = ARCHS["clip-vit-b32"]
    state = random_state_dict(arch, 3)
    theirs_net = _torch_fidelity_clip("clip-vit-b-32", state, arch.embed_dim, monkeypatch, tmp_path)
    ours = ClipExtractor(arch, state, "0" * 64, "clip-tf1-bilinear")
    for images in (_images(1, 3, 30, 30), _images(2, 2, 260, 300)):
        with torch.no_grad():
            (theirs,) = theirs_net(images)
        mine = ours(images)["features"]
        assert mine.shape == (len(images), 512)
        assert float(theirs.std(dim=0).mean()) > 1e-3
        assert rel_err(mine, theirs) < TOL


def cmmd_reference_input(image: np.ndarray, size: int) -> np.ndarray:
    """google-research cmmd: _center_crop_and_resize, float32, /255, then scenic normalize_image (NHWC)."""
    from PIL import Image

    im = Image.fromarray(image.transpose(1, 2, 0))
    w, h = im.size
    l = min(w, h)  # noqa: E741  (the reference's name)
    top, left = (h - l) // 2, (w - l) // 2
    im = im.crop((left, top, left + l, top + l)).resize((size, size), resample=Image.BICUBIC)
    x = np.asarray(im).astype(np.float32) / 255.0
    return (x - np.array(CLIP_MEAN, np.float32)) / np.array(CLIP_STD, np.float32)


def test_cmmd_policy_matches_the_reference_preprocessing():
    policy = CLIP_PREPROCESSING.get("cmmd")
    assert policy.name == "clip-cmmd"
    for images in (_images(4, 2, 40, 64), _images(5, 2, 500, 380), _images(6, 1, 336, 336)):
        ours = policy(images, 336).numpy().transpose(0, 2, 3, 1)
        ref = np.stack([cmmd_reference_input(im.numpy(), 336) for im in images])
        assert np.abs(ours - ref).max() < 1e-5


@pytest.fixture(scope="module")
def b32_archive(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A ViT-B/32 archive in OpenAI's layout (traced, float16, torch.jit.save) and the state dict it holds."""
    path = tmp_path_factory.mktemp("clip") / "ViT-B-32.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        state = openai_like_archive(path, ARCHS["clip-vit-b32"], seed=11)
    return path, state


def test_b32_archive_reads_like_torch_jit_load(b32_archive):
    path, state = b32_archive
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ours = assert_reads_like_torch(path)
    assert set(ours) == set(state)


def test_build_clip_reads_openai_archives(b32_archive):
    path, state = b32_archive
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(WeightsError, match=rf"{path}.*has sha256 {digest}, expected {ARCHS['clip-vit-b32'].archive_sha256}"):
        build_clip("clip-vit-b32", weights=path)
    ours = build_clip("clip-vit-b32", weights=path, allow_unverified=True)
    assert not ours.weights_verified and ours.weights_sha256 == digest
    visual = {k: v.half() for k, v in state.items() if k.startswith("visual.")}  # as the archive stores them
    theirs = ClipExtractor(ARCHS["clip-vit-b32"], visual, "0" * 64, "clip-tf1-bilinear")
    images = _images(8, 2, 48, 40)
    assert torch.allclose(ours(images)["features"], theirs(images)["features"], rtol=0, atol=1e-6)


def test_wrong_architecture_and_foreign_archives_are_refused(tmp_path, b32_archive):
    path = tmp_path / "b32.pth"
    torch.save(random_state_dict("clip-vit-b32", 0), path)
    with pytest.raises(WeightsError, match=r"does not fit clip-vit-l14.*expected.*looks like clip-vit-b32"):
        build_clip("clip-vit-l14", weights=path)
    with pytest.raises(WeightsError, match=r"ViT-B-32\.pt does not fit clip-vit-l14.*looks like clip-vit-b32"):
        build_clip("clip-vit-l14", weights=b32_archive[0], allow_unverified=True)
    ts = tmp_path / "linear.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(ts))
    with pytest.raises(WeightsError, match=r"linear\.pt has no 'visual\.\*' entries"):
        build_clip("clip-vit-b32", weights=ts, allow_unverified=True)


def test_missing_weights_say_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path))
    monkeypatch.delenv("GENBENCH_CLIP_WEIGHTS", raising=False)
    with pytest.raises(WeightsError, match=r"downloads are off.*3035c92b.*--weights.*GENBENCH_CLIP_WEIGHTS.*"
                                           r"ViT-L-14-336px\.pt.*state_dict"):
        build_clip("clip-vit-l14-336", allow_download=False)


@pytest.mark.slow
def test_vit_l14_336_matches_torch_fidelity(monkeypatch, tmp_path):
    arch = ARCHS["clip-vit-l14-336"]
    state = random_state_dict(arch, 5)
    theirs_net = _torch_fidelity_clip("clip-vit-l-14-336px", state, arch.embed_dim, monkeypatch, tmp_path)
    images = _images(7, 2, 64, 80)
    with torch.no_grad():
        (theirs,) = theirs_net(images)
    mine = ClipExtractor(arch, state, "0" * 64, "clip-tf1-bilinear")(images)["features"]
    assert mine.shape == (2, 768)
    assert rel_err(mine, theirs) < TOL

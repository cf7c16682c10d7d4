"""DINOv2 against each anchor's own code, on seeded random ViT-S/14 weights in the official key layout.

Oracles (none of them is genbench code):

- the network: the ``dinov2`` PyPI package (a snapshot of the official DinoVisionTransformer, installed with
  ``pip install --no-deps`` as a test dependency only), built as the official hub backbone
  (``img_size=518, patch_size=14, init_values=1.0, block_chunks=0``);
- ``dinov2-tf1-bilinear``: torch-fidelity 0.4's ``FeatureExtractorDinoV2`` with ``torch.hub.load`` redirected
  to that random model;
- ``dinov2-pil-bicubic``: dgm-eval's ``DINOv2Encoder.transform`` (torchvision ``Resize((224, 224), BICUBIC)``
  on the PIL image, ``ToTensor``, ``Normalize``) and EDM2's ``DINOv2Detector`` ``resize_mode='pil'``, re-typed
  below from their published files (dgm_eval/models/dinov2.py, edm2/calculate_metrics.py);
- ``dinov2-pil-bicubic-float``: dgm-eval's ``resizer.pil_resize`` (``--clean_resize``), re-typed;
- ``dinov2-torch-bicubic``: EDM2's default ``resize_mode='torch'``, re-typed.

Per-image features must agree within 1e-4 (max abs error over mean abs value), on small images that the
resize enlarges and on large ones it shrinks (where antialiasing matters), and FD between two sets computed
from genbench's features must agree with FD from the anchor's features within 1e-4 relative.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genbench.features.dinov2 import ARCHS, Dinov2Extractor, build_network, random_state_dict
from genbench.metrics.fid import frechet_distance

pytestmark = pytest.mark.reference
TOL = 1e-4
SEED = 20240901

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def rel_err(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """max |ours - theirs| / mean |theirs| over a [B, D] batch (the issue's measure)."""
    ours, theirs = torch.as_tensor(ours).double(), torch.as_tensor(theirs).double()
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float((ours - theirs).abs().max() / theirs.abs().mean())


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return random_state_dict("dinov2-vit-s14", SEED)


@pytest.fixture(scope="module")
def official(state):
    """The dinov2 package's ViT-S/14 hub backbone with the random weights."""
    vits = pytest.importorskip("dinov2.models.vision_transformer")
    logging.getLogger("dinov2").setLevel(logging.ERROR)
    model = vits.vit_small(patch_size=14, img_size=518, init_values=1.0, block_chunks=0)
    model.load_state_dict(state)  # strict: the official key layout is genbench's
    return model.eval().requires_grad_(False)


def _images(seed: int, n: int, h: int, w: int) -> torch.Tensor:
    """Seeded uint8 [n, 3, h, w]: smooth colour waves plus noise, so resizing and antialiasing matter."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for _ in range(n):
        freq = rng.uniform(0.05, 0.6, size=(3, 1, 1))
        phase = rng.uniform(0, 2 * np.pi, size=(3, 1, 1))
        wave = 127.5 + 90 * np.sin(freq * (xx + 0.6 * yy)[None] + phase)
        out.append(np.clip(np.round(wave + rng.normal(0, 30, size=(3, h, w))), 0, 255).astype(np.uint8))
    return torch.from_numpy(np.stack(out))


@pytest.fixture(scope="module")
def image_sets() -> dict[str, torch.Tensor]:
    """Images the resize enlarges (28x28, 40x33), ones it shrinks (300x260), and a set with its blurred copy."""
    real = _images(10, 6, 36, 30)
    blurred = F.avg_pool2d(F.pad(real.float(), (1, 1, 1, 1), mode="replicate"), 3, stride=1).round().to(torch.uint8)
    return {"small": _images(1, 2, 28, 28), "odd": _images(2, 2, 40, 33), "large": _images(3, 2, 300, 260),
            "real": real, "blurred": blurred}


def ours(state, policy: str) -> Dinov2Extractor:
    return Dinov2Extractor(ARCHS["dinov2-vit-s14"], state, "0" * 64, policy)


# --------------------------------------------------------------------------- the anchors' pipelines, re-typed


def dgm_eval_transform(image: np.ndarray, clean_resize: bool) -> torch.Tensor:
    """dgm-eval DINOv2Encoder.transform on the PIL image its loader makes (Image.open(path).convert('RGB'))."""
    import torchvision.transforms as TF
    from PIL import Image

    pil = Image.fromarray(image.transpose(1, 2, 0)).convert("RGB")
    if clean_resize:  # dgm_eval/resizer.py pil_resize
        x = np.array(pil.convert("RGB")).astype(np.float32)
        channels = []
        for idx in range(3):
            img = Image.fromarray(x[:, :, idx], mode="F").resize((224, 224), resample=Image.BICUBIC)
            channels.append(np.asarray(img).clip(0, 255).reshape(224, 224, 1))
        x = TF.functional.to_tensor(np.concatenate(channels, axis=2).astype(np.float32)) / 255
    else:
        x = TF.Compose([TF.Resize((224, 224), TF.InterpolationMode.BICUBIC), TF.ToTensor()])(pil)
    return TF.Normalize(np.array(IMAGENET_MEAN), np.array(IMAGENET_STD))(x)


def edm2_detector_input(x: torch.Tensor, resize_mode: str) -> torch.Tensor:
    """EDM2 DINOv2Detector.__call__ up to the model call (uint8 NCHW in)."""
    from PIL import Image

    if resize_mode == "pil":
        arr = x.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        arr = np.stack([np.uint8(Image.fromarray(xx, "RGB").resize((224, 224), Image.Resampling.BICUBIC))
                        for xx in arr])
        x = torch.from_numpy(arr).permute(0, 3, 1, 2)
    elif resize_mode == "torch":
        x = F.interpolate(x.to(torch.float32), size=(224, 224), mode="bicubic", antialias=True)
    x = x.to(torch.float32) / 255
    x = x - torch.tensor(IMAGENET_MEAN, dtype=torch.float32).reshape(1, -1, 1, 1)
    return x / torch.tensor(IMAGENET_STD, dtype=torch.float32).reshape(1, -1, 1, 1)


@pytest.fixture(scope="module")
def torch_fidelity_dinov2(official):
    tfd = pytest.importorskip("torch_fidelity.feature_extractor_dinov2")
    original = torch.hub.load
    torch.hub.load = lambda *args, **kwargs: official
    try:
        return tfd.FeatureExtractorDinoV2("dinov2-vit-s-14", ["dinov2"])
    finally:
        torch.hub.load = original


def anchor_features(name: str, images: torch.Tensor, official, tf_extractor=None) -> torch.Tensor:
    with torch.no_grad():
        if name == "dgm-eval":
            return official(torch.stack([dgm_eval_transform(im.numpy(), False) for im in images]))
        if name == "dgm-eval-clean":
            return official(torch.stack([dgm_eval_transform(im.numpy(), True) for im in images]))
        if name == "edm2-pil":
            return official(edm2_detector_input(images, "pil"))
        if name == "edm2-torch":
            return official(edm2_detector_input(images, "torch"))
        if name == "torch-fidelity":
            (out,) = tf_extractor(images)
            return out
    raise ValueError(name)


CASES = [  # (anchor, genbench policy)
    ("dgm-eval", "dinov2-pil-bicubic"),
    ("edm2-pil", "dinov2-pil-bicubic"),
    ("dgm-eval-clean", "dinov2-pil-bicubic-float"),
    ("edm2-torch", "dinov2-torch-bicubic"),
    ("torch-fidelity", "dinov2-tf1-bilinear"),
]


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def features(state, official, image_sets, torch_fidelity_dinov2):
    """{(anchor, policy): (ours, theirs)}: per image set, features from genbench and from the anchor."""
    out = {}
    for anchor, policy in CASES:
        extractor = ours(state, policy)
        assert extractor.identity().preprocessing == policy
        out[anchor, policy] = {kind: (extractor(images)["features"],
                                      anchor_features(anchor, images, official, torch_fidelity_dinov2))
                               for kind, images in image_sets.items()}
    return out


def test_network_matches_the_official_code(state, official):
    net = build_network(ARCHS["dinov2-vit-s14"], state)
    assert set(net.state_dict()) == set(official.state_dict())
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    big = torch.randn(1, 3, 518, 518, generator=torch.Generator().manual_seed(1))  # 37x37: no interpolation
    rect = torch.randn(1, 3, 168, 252, generator=torch.Generator().manual_seed(2))  # a non-square grid
    with torch.no_grad():
        theirs = official(x)
        assert float(theirs.std(dim=0).mean()) > 1e-3
        assert rel_err(net(x), theirs) < TOL
        for batch in (big, rect):
            assert rel_err(net(batch), official(batch)) < TOL


@pytest.mark.parametrize("anchor,policy", CASES)
def test_features_match_each_anchor(anchor, policy, features):
    for kind, (mine, theirs) in features[anchor, policy].items():
        assert mine.shape == (len(theirs), 384) and mine.dtype == torch.float32
        assert float(theirs.std(dim=0).mean()) > 1e-3, "degenerate features: the test would prove nothing"
        assert rel_err(mine, theirs) < TOL, (anchor, kind)


def test_mixed_sizes_in_one_list_equal_per_size_batches(state, image_sets, features):
    kinds = ("small", "odd", "large")
    mixed = [im for kind in kinds for im in image_sets[kind]]  # one list of three sizes, grouped inside
    for anchor, policy in (("dgm-eval", "dinov2-pil-bicubic"), ("edm2-torch", "dinov2-torch-bicubic")):
        theirs = torch.cat([features[anchor, policy][kind][1] for kind in kinds])
        assert rel_err(ours(state, policy)(mixed)["features"], theirs) < TOL


def test_edm2_pil_and_dgm_eval_feed_the_network_the_same_input(image_sets):
    """EDM2 says its 'pil' mode 'matches the original dgm-eval codebase exactly': it does, to the bit."""
    for images in image_sets.values():
        dgm = torch.stack([dgm_eval_transform(im.numpy(), False) for im in images])
        assert torch.equal(dgm, edm2_detector_input(images, "pil"))


def test_policies_differ_on_the_same_images(features):
    """The three pipelines are not interchangeable (the reason they are recorded and refused across)."""
    pil = features["dgm-eval", "dinov2-pil-bicubic"]["small"][0]
    torch_bicubic = features["edm2-torch", "dinov2-torch-bicubic"]["small"][0]
    tf1 = features["torch-fidelity", "dinov2-tf1-bilinear"]["small"][0]
    assert rel_err(torch_bicubic, pil) > 1e-3
    assert rel_err(tf1, pil) > 1e-2


@pytest.mark.parametrize("anchor,policy", CASES)
def test_fd_from_our_features_equals_fd_from_the_anchors(anchor, policy, features):
    """FD between a set and its blurred copy, from genbench's features and from the anchor's (same formula)."""
    sets = features[anchor, policy]

    def fd(a: torch.Tensor, b: torch.Tensor) -> float:
        a, b = a.double().numpy(), b.double().numpy()
        return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))

    fd_ours = fd(sets["real"][0], sets["blurred"][0])
    fd_theirs = fd(sets["real"][1], sets["blurred"][1])
    assert fd_theirs > 0
    assert abs(fd_ours - fd_theirs) / fd_theirs < TOL, (fd_ours, fd_theirs)


@pytest.mark.slow
def test_vit_l14_matches_the_official_code():
    """The default DINOv2 space, ViT-L/14, once (about 80 GFLOP per image: two images)."""
    vits = pytest.importorskip("dinov2.models.vision_transformer")
    logging.getLogger("dinov2").setLevel(logging.ERROR)
    state = random_state_dict("dinov2-vit-l14", SEED + 1)
    model = vits.vit_large(patch_size=14, img_size=518, init_values=1.0, block_chunks=0)
    model.load_state_dict(state)
    images = _images(4, 2, 256, 240)  # shrunk to 224
    extractor = Dinov2Extractor(ARCHS["dinov2-vit-l14"], state, "0" * 64, "dinov2-pil-bicubic")
    with torch.no_grad():
        theirs = model.eval()(edm2_detector_input(images, "pil"))
    mine = extractor(images)["features"]
    assert mine.shape == (2, 1024)
    assert rel_err(mine, theirs) < TOL

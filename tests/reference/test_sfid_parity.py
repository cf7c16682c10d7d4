"""sFID's spatial layer against pytorch-fid's InceptionV3 with a forward hook, on seeded random weights.

ADM takes ``mixed_6/conv:0`` (the 1x1 branch of Mixed_6d after its batch norm and ReLU) and keeps its first 7
channels, flattened per image in TF's NHWC order. The reference here is pytorch-fid's own network with a forward
hook on ``Mixed_6d.branch1x1`` (its BasicConv2d: conv, BN, ReLU), sliced and flattened plainly in the test.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genbench.features.inception import LAYERS, SPATIAL_DIM, build_inception
from genbench.metrics.fid import frechet_distance

TOL = 1e-4


def _images(n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:40, 0:40] / 39.0
    out = []
    for _ in range(n):
        phase = rng.uniform(0, 2 * np.pi, (3, 1, 1))
        freq = rng.uniform(1, 6, (3, 1, 1))
        img = 127.5 + 90 * np.sin(freq * (xx + 0.6 * yy)[None] * np.pi + phase) + rng.normal(0, 30, (3, 40, 40))
        out.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
    return torch.from_numpy(np.stack(out))


def _hooked_pytorch_fid(inception_state, monkeypatch, images: torch.Tensor) -> torch.Tensor:
    pfi = pytest.importorskip("pytorch_fid.inception")
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *args, **kwargs: dict(inception_state))
    net = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    mixed_6d = net.blocks[2][6]  # Mixed_5b, 5c, 5d, 6a, 6b, 6c, 6d, 6e
    assert torch.equal(mixed_6d.branch1x1.conv.weight, inception_state["Mixed_6d.branch1x1.conv.weight"])
    taps: list[torch.Tensor] = []
    hook = mixed_6d.branch1x1.register_forward_hook(lambda module, args, out: taps.append(out.detach().clone()))
    try:
        with torch.no_grad():
            net(images.float() / 255)  # pytorch-fid's input: ToTensor, uint8 / 255
    finally:
        hook.remove()
    (out,) = taps
    assert out.shape[1:] == (192, 17, 17)
    first7 = out[:, :7]  # [B, 7, 17, 17]
    return first7.permute(0, 2, 3, 1).reshape(len(images), -1)  # NHWC order: row, column, channel


def _relative(ours: np.ndarray, theirs: np.ndarray) -> float:
    """max |ours - theirs| over mean |theirs|."""
    return float(np.abs(ours - theirs).max() / np.abs(theirs).mean())


def _plain_fd(a: np.ndarray, b: np.ndarray) -> float:
    """FD written plainly: means, np.cov (N-1), tr sqrt via the symmetric form sqrt(S1) S2 sqrt(S1)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    eig = np.linalg.eigvalsh(root @ s2 @ root)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(eig, 0, None)).sum())


@pytest.mark.reference
def test_spatial_layer_matches_pytorch_fid_hook(inception_weights_file, inception_state, monkeypatch):
    images = _images(8, seed=3)
    theirs = _hooked_pytorch_fid(inception_state, monkeypatch, images).double().numpy()
    path, _ = inception_weights_file
    ext = build_inception(weights=path, preprocessing="torch-bilinear", allow_unverified=True, layer="spatial")
    ours = ext(images)["features"].double().numpy()
    assert ours.shape == theirs.shape == (8, SPATIAL_DIM) == (8, 2023)
    assert float(theirs.std(axis=0).mean()) > 1e-3  # distinct, non-degenerate features (ReLU keeps some positive)
    assert _relative(ours, theirs) < TOL
    # the FD of two halves: genbench's on our features against the plain computation on pytorch-fid's
    ours_fd = frechet_distance(ours[:4].mean(0), np.cov(ours[:4], rowvar=False),
                               ours[4:].mean(0), np.cov(ours[4:], rowvar=False))
    theirs_fd = _plain_fd(theirs[:4], theirs[4:])
    assert theirs_fd > 1e-3
    assert abs(ours_fd - theirs_fd) / theirs_fd < TOL


@pytest.mark.reference
def test_both_layers_in_one_pass_equal_each_alone(inception_weights_file):
    """pool3+spatial is [pool3 | spatial]; its pool3 part equals the default layer's features bit for bit."""
    images = _images(2, seed=5)
    path, _ = inception_weights_file
    plain = build_inception(weights=path, allow_unverified=True, backend="torch")
    both = build_inception(weights=path, allow_unverified=True, layer="pool3+spatial")
    spatial = build_inception(weights=path, allow_unverified=True, layer="spatial")
    out_plain, out_both = plain(images), both(images)
    assert out_both["features"].shape == (2, LAYERS["pool3+spatial"]) == (2, 2048 + 2023)
    assert torch.equal(out_both["features"][:, :2048], out_plain["features"])
    assert torch.equal(out_both["logits"], out_plain["logits"])
    assert torch.equal(out_both["features"][:, 2048:], spatial(images)["features"])
    assert "logits" not in spatial(images) and spatial.logits_dim is None
    assert spatial.identity().to_dict()["layer"] == "spatial" and spatial.identity().feature_dim == 2023
    parts = both.part_identities()
    assert [p["layer"] for p in parts.values()] == ["pool3", "spatial"]
    assert [p["feature_dim"] for p in parts.values()] == [2048, 2023]

"""Parity figures of the DINOv2 extractors, and the FD gap between the DINOv2 policies on the same images.

Seeded random ViT-S/14 weights (the official files cannot be downloaded here). For each (anchor, policy) pair
of tests/reference/test_dinov2_parity.py (the anchors' pipelines as re-typed there, the dinov2 package's
network, torch-fidelity's extractor): the max relative per-image feature error (max |ours - theirs| / mean
|theirs|) and the relative error of FD(R, G) computed from genbench's and from the anchor's features, for
R = the first N Fashion-MNIST test images (28x28, enlarged to 224) and G = their 3x3-blurred copies, and for
N/2 of them enlarged to 336x336 with noise (shrunk to 224). Then, per genbench policy: FD(R, G), FD between R
under that policy and R under dinov2-pil-bicubic, and the mean relative feature difference to pil-bicubic.

Usage: .venv/bin/python bench/bench_dinov2_parity.py [N]   (default 60; about 20 minutes on 2 shared cores)
"""

from __future__ import annotations

import gzip
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genbench.features.dinov2 import ARCHS, Dinov2Extractor, random_state_dict  # noqa: E402
from genbench.metrics.fid import frechet_distance  # noqa: E402
from tests.reference import test_dinov2_parity as T  # noqa: E402  (the anchors' pipelines, re-typed there)

POLICIES = ("dinov2-pil-bicubic", "dinov2-pil-bicubic-float", "dinov2-torch-bicubic", "dinov2-tf1-bilinear")


def fd(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().numpy(), b.double().numpy()
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def blur(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x.float(), (1, 1, 1, 1), mode="replicate"), 3, stride=1).round().to(torch.uint8)


def batched(run, x: torch.Tensor, size: int = 16) -> torch.Tensor:
    return torch.cat([run(x[i:i + size]) for i in range(0, len(x), size)])


def main(n: int) -> None:
    import dinov2.models.vision_transformer as vits
    import torch_fidelity.feature_extractor_dinov2 as tfd

    logging.disable(logging.WARNING)
    state = random_state_dict("dinov2-vit-s14", T.SEED)
    official = vits.vit_small(patch_size=14, img_size=518, init_values=1.0, block_chunks=0)
    official.load_state_dict(state)
    official.eval().requires_grad_(False)
    original = torch.hub.load
    torch.hub.load = lambda *args, **kwargs: official
    try:
        tf_extractor = tfd.FeatureExtractorDinoV2("dinov2-vit-s-14", ["dinov2"])
    finally:
        torch.hub.load = original

    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as fh:
        raw = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    real = torch.from_numpy(raw[:n].copy())[:, None].repeat(1, 3, 1, 1)
    rng = np.random.default_rng(0)
    large = F.interpolate(real[: n // 2].float(), size=(336, 336), mode="nearest")
    large = (large + torch.from_numpy(rng.normal(0, 20, size=large.shape)).float()).clamp(0, 255).round()
    large = large.to(torch.uint8)
    sets = {"28->224": (real, blur(real)), "336->224": (large, blur(large))}

    ours_feats = {}
    for anchor, policy in T.CASES:
        extractor = Dinov2Extractor(ARCHS["dinov2-vit-s14"], state, "0" * 64, policy)
        row = {}
        for label, pair in sets.items():
            mine = [batched(lambda x, e=extractor: e(x)["features"], x) for x in pair]
            theirs = [batched(lambda x, a=anchor: T.anchor_features(a, x, official, tf_extractor), x) for x in pair]
            ours_feats[policy, label] = mine
            f_ours, f_theirs = fd(*mine), fd(*theirs)
            row[label] = {"feat_max_rel_err": max(T.rel_err(m, t) for m, t in zip(mine, theirs)),
                          "fd_ours": f_ours, "fd_anchor": f_theirs, "fd_rel_err": abs(f_ours - f_theirs) / f_theirs}
        print(anchor, policy, json.dumps(row), flush=True)
    for label in sets:
        base = ours_feats["dinov2-pil-bicubic", label][0]
        for policy in POLICIES:
            a, b = ours_feats[policy, label]
            diff = float(((a - base).norm(dim=1) / base.norm(dim=1)).mean())
            print(f"{label} {policy}: FD(R, G)={fd(a, b):.4f}  FD(R under {policy}, R under pil-bicubic)="
                  f"{fd(a, base):.4f}  mean rel feature diff vs pil-bicubic={diff:.3g}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)

"""``fmnist-cnn``: the project's small Fashion-MNIST classifier, used as a domain feature extractor.

Layers returned: ``features`` = penultimate fully connected layer after its ReLU, float32 [B, 128];
``logits`` = the 10 class logits, float32 [B, 10] (for the domain classifier score ``is_fmnist``).
Metrics on these features are named ``fd_fmnist`` / ``is_fmnist`` / ``kid_fmnist`` so they are never
mistaken for Inception FID/IS/KID.

Preprocessing policy ``luma-bilinear28`` (the only one; recorded in ``identity()``):

1. input uint8 RGB [B, 3, H, W] (or a list of [3, H, W] of mixed sizes);
2. luminance Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601), computed in float64 and kept unrounded,
   so a gray image repeated to RGB gives back exactly its gray values;
3. when H, W != 28, 28: resize to 28 x 28 with antialiased bilinear interpolation
   (``torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False)``,
   aspect ratio not kept);
4. scale to [0, 1] (divide by 255) and normalise with the Fashion-MNIST train mean 0.2860 and std 0.3530.

The bundled weights ``genbench/weights/fmnist-cnn.pt`` (trained by
``python -m genbench.features.train_fmnist_cnn``; accuracy and command in ``fmnist-cnn.json``) are checked
against the SHA-256 pinned below; ``weights=PATH`` loads another state dict of the same network, whose
actual SHA-256 is then recorded.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, InputError, WeightsError
from ..util.files import sha256_file as file_sha256
from .base import EXTRACTORS, FeatureExtractor, MetricNames

PREPROCESSING = "luma-bilinear28"
INPUT_SIZE = 28
MEAN = 0.2860
STD = 0.3530
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
FEATURE_DIM = 128
NUM_CLASSES = 10

WEIGHTS_PATH = Path(__file__).resolve().parent.parent / "weights" / "fmnist-cnn.pt"
#: SHA-256 of the bundled weights file; changed only by retraining (see fmnist-cnn.json).
WEIGHTS_SHA256 = "4f32f1e18bd4dbeb8880df1d92947a21126337d40ff309c6c064517f3560226c"


class FmnistNet(nn.Module):
    """The classifier: normalised gray float32 [B, 1, 28, 28] -> (features [B, 128], logits [B, 10]).

    Two conv blocks (conv3x3-BN-ReLU-maxpool, 32 then 64 channels), then fc 3136 -> 128 (ReLU) -> 10.
    Dropout acts only in training mode.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc1 = nn.Linear(64 * 7 * 7, FEATURE_DIM)
        self.dropout = nn.Dropout(0.3)
        self.fc2 = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = F.relu(self.fc1(self.conv(x).flatten(1)))
        return features, self.fc2(self.dropout(features))


def normalise_gray(gray: torch.Tensor) -> torch.Tensor:
    """Gray values in [0, 255] (float, [B, 1, 28, 28]) -> the network's normalised input."""
    return (gray / 255.0 - MEAN) / STD


def preprocess(images: torch.Tensor | np.ndarray | list) -> torch.Tensor:
    """Policy ``luma-bilinear28``: uint8 RGB [B,3,H,W] or list of [3,H,W] -> float32 [B,1,28,28] normalised.

    Raises InputError on anything but uint8 3-channel images.
    """
    if isinstance(images, (list, tuple)):
        if not images:
            raise InputError("fmnist-cnn: expected uint8 images [B, 3, H, W], got an empty list")
        return torch.cat([preprocess(_as_tensor(im, "list item")[None]) for im in images])
    x = _as_tensor(images, "batch")
    if x.ndim != 4 or x.shape[1] != 3:
        raise InputError(f"fmnist-cnn: expected uint8 images of shape [B, 3, H, W], got {tuple(x.shape)}")
    w = torch.tensor(LUMA_WEIGHTS, dtype=torch.float64, device=x.device)
    luma = torch.einsum("bchw,c->bhw", x.to(torch.float64), w).unsqueeze(1).to(torch.float32)
    if luma.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        luma = F.interpolate(luma, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
    return normalise_gray(luma)


def _as_tensor(images: torch.Tensor | np.ndarray, what: str) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise InputError(f"fmnist-cnn: expected uint8 images, got numpy {images.dtype} ({what})")
        return torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise InputError(f"fmnist-cnn: expected a uint8 tensor or array, got {type(images).__name__} ({what})")
    if images.dtype != torch.uint8:
        raise InputError(f"fmnist-cnn: expected uint8 images, got {images.dtype} ({what}); do not pre-scale")
    return images



def load_state(path: Path, expected_sha256: str | None) -> tuple[dict, str]:
    """Read a state dict with ``torch.load(weights_only=True)``; check its SHA-256 when one is expected.

    Raises WeightsError naming the file when it is missing, unreadable or fails its checksum.
    """
    if not path.is_file():
        raise WeightsError(f"fmnist-cnn weights {path}: file not found")
    sha = file_sha256(path)
    if expected_sha256 is not None and sha != expected_sha256:
        raise WeightsError(
            f"fmnist-cnn weights {path}: SHA-256 {sha} does not match the pinned {expected_sha256}; "
            "the file is damaged or was replaced (retrain with python -m genbench.features.train_fmnist_cnn "
            "and update WEIGHTS_SHA256, or pass your file as weights=PATH / --weights PATH)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise WeightsError(f"fmnist-cnn weights {path}: cannot load as a state dict ({exc})") from None
    if not isinstance(state, dict):
        raise WeightsError(f"fmnist-cnn weights {path}: expected a state dict, got {type(state).__name__}")
    return state, sha


class FmnistCNN(FeatureExtractor):
    """Feature extractor wrapping :class:`FmnistNet`; always in eval mode, no gradients."""

    name = "fmnist-cnn"
    layer = "penultimate"
    feature_dim = FEATURE_DIM
    logits_dim = NUM_CLASSES
    accepts_mixed_sizes = True
    metric_names = MetricNames("fd_fmnist", "is_fmnist", "kid_fmnist")

    def __init__(self, net: FmnistNet, weights_sha256: str) -> None:
        super().__init__(PREPROCESSING, weights_sha256)
        self.net = net
        self.train(False)

    def train(self, mode: bool = True) -> FmnistCNN:
        """Stays in eval mode whatever ``mode`` says (BatchNorm running stats, no dropout)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor | np.ndarray | list) -> dict[str, torch.Tensor]:
        """uint8 RGB [B,3,H,W] (or list of [3,H,W]) -> {"features": [B,128], "logits": [B,10]} float32."""
        device = next(self.net.parameters()).device
        if isinstance(images, (list, tuple)):
            images = [im.to(device) if isinstance(im, torch.Tensor) else im for im in images]
        elif isinstance(images, torch.Tensor):
            images = images.to(device)
        x = preprocess(images).to(device)
        features, logits = self.net(x)
        return {"features": features.float(), "logits": logits.float()}


@EXTRACTORS.register("fmnist-cnn")
def build_fmnist_cnn(weights: str | None = None, preprocessing: str | None = None, device: str = "cpu") -> FmnistCNN:
    """The bundled Fashion-MNIST CNN (``weights=None``) or the same network with weights from ``weights``.

    Raises ConfigError for a preprocessing other than ``luma-bilinear28`` and WeightsError for bad weights.
    """
    if preprocessing not in (None, PREPROCESSING):
        raise ConfigError(
            f"fmnist-cnn: unknown preprocessing (--preprocessing) {preprocessing!r}; expected one of: {PREPROCESSING}"
        )
    path = WEIGHTS_PATH if weights is None else Path(weights)
    state, sha = load_state(path, WEIGHTS_SHA256 if weights is None else None)
    net = FmnistNet()
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(f"fmnist-cnn weights {path}: not a state dict of this network ({exc})") from None
    return FmnistCNN(net, sha).to(device)


build_fmnist_cnn.metric_names = FmnistCNN.metric_names  # type: ignore[attr-defined]  # known without loading weights

"""The FID Inception-v3: a PyTorch port of TF's ``inception-2015-12-05`` graph (``pool_3``, ``logits``).

This is the network of the original FID (TTUR) and Inception Score code, as ported by
pytorch-fid and torch-fidelity. Its differences from torchvision's Inception-v3:

- average pools in the A, C and first E blocks ignore zero padding (TF ``SAME`` pools);
- the second E block (``Mixed_7c``) pools with **max**, not average, as the TF graph does;
- the classifier has 1008 outputs, and the Inception Score uses *unbiased* logits
  ``pool3 @ fc.weight.T`` (the original IS code reads the ``MatMul`` before the bias).

Parameter names follow torchvision/pytorch-fid (``Conv2d_1a_3x3.conv.weight``,
``Mixed_7c.branch_pool.bn.running_var``, ``fc.weight`` ...), so pytorch-fid's
``pt_inception-2015-12-05-6726825d.pth`` (the same file torch-fidelity ships) loads as is.

Layers (``layer=``, CLI ``--layer``; :data:`LAYERS`):

- ``pool3`` (default): the 2048-d ``pool_3`` features of FID, KID and precision/recall;
- ``spatial``: ADM's sFID features, 17 x 17 x 7 = 2,023 values per image (at the 299 x 299 input);
- ``pool3+spatial``: both in one pass, concatenated ``[pool3 | spatial]`` (4,071 values), which a prepared run
  splits into the pool3 features and the spatial statistics (:func:`split_spatial`).

The spatial layer is ADM's ``mixed_6/conv:0`` (openai/guided-diffusion ``evaluations/evaluator.py``,
``FID_SPATIAL_NAME = "mixed_6/conv:0"``, then ``spatial[..., :7]`` in ``_create_feature_graph``): the first 7
channels of the 1x1 branch of the fourth 17 x 17 block. torch-fidelity's converter
(``utils/util_convert_inception_weights.py``, ``"mixed_6/conv/conv2d_params": "Mixed_6d.branch1x1.conv"`` and
``"mixed_6/conv/batchnorm": "Mixed_6d.branch1x1.bn"``) maps that TF scope to ``Mixed_6d.branch1x1`` here. The
convolution (``mixed_6/conv/Conv2D``) and its batch norm (``mixed_6/conv/batchnorm``) are ops *inside* the scope;
the tensor ``mixed_6/conv:0`` is the scope's own output op, the one the block's concatenation consumes, so it is
taken after the batch norm and the ReLU, i.e. the output of ``BasicConv2d`` (conv, BN, ReLU) below. The values are
flattened in TF's NHWC order: ``x[b, :7].permute(1, 2, 0).reshape(-1)`` (row, column, channel).

Registered as extractor ``inception-v3`` (the default), built by :func:`build_inception`.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, InputError, WeightsError
from .base import EXTRACTORS, FeatureExtractor, MetricNames, check_device
from .fast_cpu import Runner, check_backend, make_runner
from .preprocess import PreprocessPolicy, get_preprocessing
from .weights import INCEPTION_V3_WEIGHTS, load_state_dict, resolve_weights

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
SPATIAL_CHANNELS = 7  # ADM keeps the first 7 channels of mixed_6/conv
SPATIAL_DIM = 17 * 17 * SPATIAL_CHANNELS  # 2023 at the 299 x 299 input

#: layer name -> feature width (see the module docstring)
LAYERS: dict[str, int] = {"pool3": FEATURE_DIM, "spatial": SPATIAL_DIM, "pool3+spatial": FEATURE_DIM + SPATIAL_DIM}
DEFAULT_LAYER = "pool3"


# --------------------------------------------------------------------------- network


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as TF) and ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 'SAME' average pool that, like TF, divides by the number of unpadded pixels."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1, 5x5, double 3x3 and pool branches."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_tf_avg_pool(x)),
        ], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b..e)."""

    def __init__(self, cin: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d7 = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d7 = layer(d7)
        return torch.cat([self.branch1x1(x), b7, d7, self.branch_pool(_tf_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = x
        for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            b7,
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3/3x1 outputs (Mixed_7b with average pool, Mixed_7c with max pool)."""

    def __init__(self, cin: int, pool: str) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        if self.pool == "avg":
            pooled = _tf_avg_pool(x)
        else:  # the TF graph's Mixed_7c really max-pools here
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(s), self.branch3x3_2b(s),
            self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d),
            self.branch_pool(pooled),
        ], 1)


class InceptionV3Network(nn.Module):
    """The TF FID Inception-v3 body and classifier.

    ``forward(x)``: normalised float32 [B, 3, 299, 299] ->
    (``pool3`` float32 [B, 2048], unbiased ``logits`` float32 [B, 1008] = pool3 @ fc.weight.T).
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pool3, logits, _ = self.taps(x, spatial=False)
        return pool3, logits

    def taps(self, x: torch.Tensor, spatial: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(pool3 [B, 2048], unbiased logits [B, 1008], spatial [B, 17*17*7] NHWC-flattened or None)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        tap = None
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            if spatial and block is self.Mixed_6d:  # TF mixed_6/conv:0 = Mixed_6d's 1x1 branch after BN and ReLU
                tap = spatial_features(self.Mixed_6d.branch1x1(x))
            x = block(x)
        pool3 = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return pool3, pool3 @ self.fc.weight.T, tap


def spatial_features(branch: torch.Tensor) -> torch.Tensor:
    """ADM's sFID features from the 1x1 branch output [B, 192, H, W]: the first 7 channels, flattened in TF's
    NHWC order -> float [B, H * W * 7]."""
    return branch[:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1).reshape(branch.shape[0], -1)


class _WithSpatial(nn.Module):
    """The network with the spatial tap: ``forward(x)`` -> (pool3, logits, spatial); runs eagerly (no ONNX)."""

    def __init__(self, net: InceptionV3Network) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pool3, logits, tap = self.net.taps(x, spatial=True)
        assert tap is not None
        return pool3, logits, tap


# --------------------------------------------------------------------------- weights


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def adapt_state_dict(state: dict[str, torch.Tensor], net: nn.Module, source: str = "weights") -> dict[str, torch.Tensor]:
    """Check a pytorch-fid / torch-fidelity style state dict against ``net`` and return one that loads strictly.

    Accepts a ``module.`` prefix (DataParallel saves), missing ``num_batches_tracked``
    buffers (unused in eval mode) and an unused ``AuxLogits.*`` head. Anything else
    missing, extra or of the wrong shape raises WeightsError naming ``source``.
    """
    state = _strip_prefix(state, "module.")
    state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
    expected = net.state_dict()
    out: dict[str, torch.Tensor] = {}
    missing, wrong = [], []
    for key, ref in expected.items():
        if key in state:
            if tuple(state[key].shape) != tuple(ref.shape):
                wrong.append(f"{key} {tuple(state[key].shape)} (expected {tuple(ref.shape)})")
            out[key] = state[key].to(ref.dtype)
        elif key.endswith("num_batches_tracked"):
            out[key] = torch.zeros((), dtype=torch.long)
        else:
            missing.append(key)
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if items:
                parts.append(f"{len(items)} {label} ({', '.join(items[:3])}{', ...' if len(items) > 3 else ''})")
        raise WeightsError(f"{source} does not fit the FID Inception-v3: " + "; ".join(parts))
    return out


def random_state_dict(seed: int, calibration_size: int = 299) -> dict[str, torch.Tensor]:
    """Seeded random weights with O(1) activations, for tests and benchmarks only (never for metrics).

    Convolutions get He-normal weights (std sqrt(2 / fan_in)), batch-norm scales
    U(0.5, 1.5) and shifts N(0, 0.25); each batch norm's running mean and variance are
    then set, layer by layer in one forward pass, to the statistics of its input on one
    seeded random image of ``calibration_size`` pixels, so every layer is about
    unit-scaled. ``fc`` gets N(0, 1 / 2048) weights and N(0, 0.1) biases.
    """
    gen = torch.Generator().manual_seed(seed)
    net = InceptionV3Network().eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.25)
        net.fc.weight.copy_(torch.randn(net.fc.weight.shape, generator=gen) / FEATURE_DIM ** 0.5)
        net.fc.bias.copy_(torch.randn(net.fc.bias.shape, generator=gen) * 0.1)

        def calibrate(module: nn.BatchNorm2d, inputs: tuple[torch.Tensor]) -> None:
            x = inputs[0]
            assert module.running_mean is not None and module.running_var is not None  # BNs tracking statistics
            module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
            module.running_var.copy_(x.var(dim=(0, 2, 3), unbiased=False).clamp_min(1e-4))

        hooks = [m.register_forward_pre_hook(calibrate) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        images = torch.rand((1, 3, calibration_size, calibration_size), generator=gen) * 2 - 1
        net(images)
        for hook in hooks:
            hook.remove()
    return {k: v.clone() for k, v in net.state_dict().items()}


# --------------------------------------------------------------------------- extractor


def check_layer(layer: str | None) -> str:
    """``layer`` (None: ``pool3``) if it is one of :data:`LAYERS`, else ConfigError listing them."""
    if layer is None:
        return DEFAULT_LAYER
    if layer not in LAYERS:
        raise ConfigError(f"layer (--layer) {layer!r} is not a layer of inception-v3; expected one of: "
                          f"{', '.join(LAYERS)}")
    return layer


def _as_tensor(image: object, what: str) -> torch.Tensor:
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(image)
    if not isinstance(image, torch.Tensor):
        raise InputError(f"{what}: expected a uint8 torch.Tensor or numpy array, got {type(image).__name__}")
    if image.dtype != torch.uint8:
        raise InputError(
            f"{what}: expected dtype uint8 with values 0..255, got {image.dtype}; "
            "convert float images with (x * 255).round().clamp(0, 255).to(torch.uint8)"
        )
    return image


class InceptionV3Extractor(FeatureExtractor):
    """FID Inception-v3 on uint8 RGB images: ``features`` = pool3 [B, 2048], ``logits`` = unbiased [B, 1008].

    ``forward(images)`` takes uint8 [B, 3, H, W] (tensor or numpy) or a sequence of
    uint8 [3, H, W] of mixed sizes; each is resized to 299 by the named preprocessing
    policy. Raises InputError for any other dtype or shape. Outputs are float32 on the
    extractor's device. Under ``torch.autocast`` the eager network runs whatever the backend.
    """

    name = "inception-v3"
    layer = "pool3"
    feature_dim = FEATURE_DIM
    logits_dim: int | None = NUM_CLASSES
    accepts_mixed_sizes = True
    metric_names = MetricNames("fid", "is", "kid")
    #: False when the weights file's sha256 is not the published one (accepted with allow_unverified).
    weights_verified: bool = True

    def __init__(
        self,
        state_dict: dict[str, torch.Tensor],
        weights_sha256: str,
        preprocessing: str | PreprocessPolicy | None = None,
        device: str | torch.device = "cpu",
        backend: str = "auto",
        source: str = "weights",
        layer: str | None = None,
    ) -> None:
        policy = preprocessing if isinstance(preprocessing, PreprocessPolicy) else get_preprocessing(preprocessing)
        super().__init__(policy.name, weights_sha256)
        self.policy = policy
        layer = check_layer(layer)
        if layer != DEFAULT_LAYER:  # instance attributes: the class keeps the pool3 defaults
            self.layer = layer
            self.feature_dim = LAYERS[layer]
            if layer == "spatial":
                self.logits_dim = None  # a spatial feature file has no classifier head
                self.metric_names = MetricNames("sfid", "is", "kid")
            if backend == "onnxruntime":
                raise ConfigError(f"layer={layer!r} (--layer) runs on the torch backend only, not onnxruntime")
            backend = "torch"  # the ONNX export has the pool3 and logits outputs only
        self.device = torch.device(device)
        check_device(self.device)
        check_backend(backend, self.device, weights_sha256)
        with torch.device("meta"):  # no random initialisation: every tensor comes from the state dict
            net = InceptionV3Network()
        net.load_state_dict(adapt_state_dict(state_dict, net, source), assign=True)
        # The network stays on the CPU, and the runner unbuilt, until the first batch: a run whose features
        # all come from the cache never initialises CUDA or an ONNX session.
        self.net = net.requires_grad_(False).eval()
        self._backend_choice = backend
        self._runner: Runner | None = None
        self.eval()

    @property
    def runner(self) -> Runner:
        """The network on its device, ready to run (built on first use)."""
        if self._runner is None:
            self.net.to(self.device)
            net: nn.Module = self.net if self.layer == DEFAULT_LAYER else _WithSpatial(self.net)
            self._runner = make_runner(net, self._backend_choice, self.device, self.weights_sha256)
        return self._runner

    @property
    def backend(self) -> str:
        return self.runner.backend

    def _apply(self, fn, recurse: bool = True):  # .to(), .cuda(), .half() ...: place the network first
        _ = self.runner
        return super()._apply(fn, recurse)

    def train(self, mode: bool = True) -> InceptionV3Extractor:
        super().train(False)  # always in inference mode: batch norm uses the TF statistics
        return self

    def prepare(self, images: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray]) -> torch.Tensor:
        """Validate and preprocess: uint8 images -> float32 [B, 3, 299, 299] on ``self.device``."""
        if isinstance(images, (torch.Tensor, np.ndarray)):
            batch = _as_tensor(images, "images")
            if batch.dim() != 4 or batch.shape[1] != 3:
                raise InputError(f"images: expected uint8 [B, 3, H, W] RGB, got shape {tuple(batch.shape)}")
            _ = self.runner  # the network's device is ready before any tensor moves there
            return self.policy(batch.to(self.device), INPUT_SIZE)
        if not isinstance(images, Sequence) or isinstance(images, (str, bytes)):
            raise InputError(f"images: expected a uint8 [B,3,H,W] tensor or a list of [3,H,W], got {type(images).__name__}")
        items = [_as_tensor(img, f"images[{i}]") for i, img in enumerate(images)]
        for i, img in enumerate(items):
            if img.dim() != 3 or img.shape[0] != 3:
                raise InputError(f"images[{i}]: expected uint8 [3, H, W] RGB, got shape {tuple(img.shape)}")
        out = torch.empty((len(items), 3, INPUT_SIZE, INPUT_SIZE), dtype=torch.float32, device=self.device)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(items):
            by_size.setdefault((img.shape[1], img.shape[2]), []).append(i)
        for idx in by_size.values():
            group = torch.stack([items[i] for i in idx]).to(self.device)
            out[idx] = self.policy(group, INPUT_SIZE)
        return out

    @torch.no_grad()
    def forward(self, images: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray]) -> dict[str, torch.Tensor]:
        x = self.prepare(images)
        if x.shape[0] == 0:
            empty = torch.empty((0,), dtype=torch.float32, device=self.device)
            out = {"features": empty.reshape(0, self.feature_dim)}
            return out if self.logits_dim is None else {**out, "logits": empty.reshape(0, NUM_CLASSES)}
        if self.layer != DEFAULT_LAYER:
            pool3, logits, spatial = self.runner(x)  # type: ignore[misc]  # the _WithSpatial runner: three outputs
            if self.layer == "spatial":
                return {"features": spatial.float()}
            return {"features": torch.cat([pool3.float(), spatial.float()], 1), "logits": logits.float()}
        if self.backend != "torch" and torch.is_autocast_enabled(x.device.type):
            features, logits = self.net(x)  # a reduced precision was asked for: only the eager network honours it
        else:
            features, logits = self.runner(x)
        return {"features": features.float(), "logits": logits.float()}

    def part_identities(self) -> dict[str, dict]:
        """For ``pool3+spatial``: the identity of each part (``pool3``, ``spatial``) as its own layer would record
        it; for one layer: ``{layer: identity}``."""
        if self.layer != "pool3+spatial":
            return {self.layer: self.identity().to_dict()}
        base = self.identity().to_dict()
        return {name: {**base, "layer": name, "feature_dim": LAYERS[name]} for name in ("pool3", "spatial")}


@EXTRACTORS.register("inception-v3")
def build_inception(
    weights: str | os.PathLike | None = None,
    preprocessing: str | None = None,
    device: str | torch.device = "cpu",
    *,
    backend: str = "auto",
    allow_unverified: bool = False,
    allow_download: bool = True,
    layer: str | None = None,
) -> InceptionV3Extractor:
    """Build the FID Inception-v3 extractor.

    ``weights``: a local ``.pth`` (CLI ``--weights``); else ``$GENBENCH_INCEPTION_WEIGHTS``,
    the cache, or a download of pytorch-fid's file (sha256-checked, see
    :mod:`genbench.features.weights`). ``preprocessing``: a name in
    :data:`genbench.features.preprocess.PREPROCESSING` (default ``tf1-bilinear``).
    ``backend``: ``auto`` | ``torch`` | ``onnxruntime`` (CPU fast path; see
    :mod:`genbench.features.fast_cpu`). ``layer``: a name in :data:`LAYERS` (default ``pool3``; the others run
    on the torch backend). Raises WeightsError / ConfigError.
    """
    policy = get_preprocessing(preprocessing)
    layer = check_layer(layer)
    resolved = resolve_weights(INCEPTION_V3_WEIGHTS, weights, allow_unverified=allow_unverified,
                               allow_download=allow_download)
    state = load_state_dict(resolved.path)
    try:
        extractor = InceptionV3Extractor(state, resolved.sha256, policy, device=device, backend=backend,
                                         source=str(resolved.path), layer=layer)
    except RuntimeError as exc:  # e.g. an unknown device string
        raise ConfigError(f"cannot build inception-v3 on device={device!r} (--device): {exc}") from exc
    extractor.weights_verified = resolved.verified
    return extractor


build_inception.metric_names = InceptionV3Extractor.metric_names  # type: ignore[attr-defined]  # known without weights
build_inception.layers = tuple(LAYERS)  # type: ignore[attr-defined]  # the --layer choices

"""DINOv2 ViT-S/B/L/g with patch 14 (Oquab et al. 2023): the official DinoVisionTransformer, written here.

Extractors ``dinov2-vit-s14`` (384-d), ``dinov2-vit-b14`` (768-d), ``dinov2-vit-l14`` (1024-d, the space of
EDM2's FD_DINOv2 and dgm-eval's default) and ``dinov2-vit-g14`` (1536-d). ``features`` = the CLS token after
the final LayerNorm, which is what the official ``model(x)`` returns. Metrics on them are named
``fd_dinov2`` / ``kid_dinov2`` (``precision`` ... are computed in this space when asked for).

The network is the official hub backbone (``dinov2/hub/backbones.py``: ``img_size=518``, ``patch_size=14``,
``init_values=1.0``, ``block_chunks=0``, no register tokens, ``interpolate_antialias=False``,
``interpolate_offset=0.1``; MLP FFN for S/B/L, fused SwiGLU with hidden width 4096 for g), so the official
``dinov2_vit{s,b,l,g}14_pretrain.pth`` state dicts load with their own keys (``patch_embed.proj.weight``,
``blocks.0.attn.qkv.weight``, ``blocks.0.ls1.gamma``, ``mask_token`` ...). Its arithmetic:

1. patch embedding: 14x14 stride-14 convolution -> [B, N, D] tokens (N = (S/14)^2);
2. prepend the CLS token, add the position embedding: the stored 37x37 grid (+ the CLS entry) interpolated
   to the input's grid g = S/14 exactly as the official code does it: ``F.interpolate(mode='bicubic',
   scale_factor=((g + 0.1) / 37, (g + 0.1) / 37), antialias=False)`` in float32 (so its sample positions
   follow the scale factor, not g/37), skipped when g = 37;
3. each block: ``x + ls1 * attn(norm1(x))`` then ``x + ls2 * ffn(norm2(x))``; LayerNorm eps 1e-6; attention
   softmax(q k^T / sqrt(d_head)) v (PyTorch's fused scaled_dot_product_attention, same formula); exact GELU;
4. final LayerNorm; ``features`` = token 0.

The interpolated position embedding depends only on the weights and the grid, so it is computed once per grid.

Weights: ``--weights PATH``, ``$GENBENCH_DINOV2_WEIGHTS``, the cache (``<cache>/weights/<file>``) or a download
of the official file from ``dl.fbaipublicfiles.com/dinov2/``. No sha256 is published for these files: the
actual sha256 of the file used is recorded with every result (``weights_verified`` False), and a user can pin
one with ``--weights-sha256`` (or ``$GENBENCH_DINOV2_WEIGHTS_SHA256``), which is then checked.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import MetricNames
from .vit_base import VitExtractor, build_from_weights, check_state_dict, register_vit
from .vit_preprocess import DEFAULT_DINOV2_PREPROCESSING, DINOV2_PREPROCESSING, VitPolicy
from .weights import WeightsSpec, load_state_dict, resolve_weights

PATCH_SIZE = 14
TRAIN_IMG_SIZE = 518  # the stored position embedding covers 518 / 14 = 37 x 37 patches
INPUT_SIZE = 224
INTERPOLATE_OFFSET = 0.1
DINOV2_METRIC_NAMES = MetricNames("fd_dinov2", "is_dinov2", "kid_dinov2")


@dataclass(frozen=True)
class Dinov2Arch:
    """One DINOv2 backbone's shape."""

    name: str  # genbench extractor name
    hub_name: str  # official hub / file name
    embed_dim: int
    depth: int
    num_heads: int
    ffn: str  # "mlp" | "swiglu"

    @property
    def ffn_hidden(self) -> int:
        hidden = 4 * self.embed_dim
        return hidden if self.ffn == "mlp" else (int(hidden * 2 / 3) + 7) // 8 * 8


ARCHS = {
    a.name: a
    for a in (
        Dinov2Arch("dinov2-vit-s14", "dinov2_vits14", 384, 12, 6, "mlp"),
        Dinov2Arch("dinov2-vit-b14", "dinov2_vitb14", 768, 12, 12, "mlp"),
        Dinov2Arch("dinov2-vit-l14", "dinov2_vitl14", 1024, 24, 16, "mlp"),
        Dinov2Arch("dinov2-vit-g14", "dinov2_vitg14", 1536, 40, 24, "swiglu"),
    )
}


def weights_spec(arch: Dinov2Arch) -> WeightsSpec:
    """The official pretrain checkpoint of ``arch`` (no published sha256)."""
    return WeightsSpec(
        name=f"{arch.name} (DINOv2 {arch.hub_name}_pretrain)",
        url=f"https://dl.fbaipublicfiles.com/dinov2/{arch.hub_name}/{arch.hub_name}_pretrain.pth",
        sha256=None,
        filename=f"{arch.hub_name}_pretrain.pth",
        env_var="GENBENCH_DINOV2_WEIGHTS",
        pin_env_var="GENBENCH_DINOV2_WEIGHTS_SHA256",
    )


# --------------------------------------------------------------------------- network


class PatchEmbed(nn.Module):
    """[B, 3, H, W] -> [B, (H/14)(W/14), D]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwiGLU(nn.Module):
    """silu(x W1) * (x W2) W3 with W1, W2 packed in ``w12`` (the official SwiGLUFFNFused layout)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    def __init__(self, arch: Dinov2Arch) -> None:
        super().__init__()
        dim = arch.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, arch.num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, arch.ffn_hidden) if arch.ffn == "mlp" else SwiGLU(dim, arch.ffn_hidden)
        self.ls2 = LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoVisionTransformer(nn.Module):
    """The official backbone (inference only): normalised float32 [B, 3, H, W] (H, W multiples of 14) ->
    CLS token after the final norm, float32 [B, D]."""

    def __init__(self, arch: Dinov2Arch) -> None:
        super().__init__()
        dim = arch.embed_dim
        grid = TRAIN_IMG_SIZE // PATCH_SIZE
        self.arch = arch
        self.patch_embed = PatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # used in training only; kept for the key layout
        self.blocks = nn.ModuleList(Block(arch) for _ in range(arch.depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self._pos_cache: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}

    def interpolated_pos_embed(self, rows: int, cols: int) -> torch.Tensor:
        """Position embedding [1, 1 + rows*cols, D] for a rows x cols patch grid (official interpolation)."""
        key = (rows, cols, self.pos_embed.device, self.pos_embed.dtype)
        cached = self._pos_cache.get(key)
        if cached is not None:
            return cached
        n = self.pos_embed.shape[1] - 1
        side = int(math.sqrt(n))
        if n == rows * cols and rows == cols:
            out: torch.Tensor = self.pos_embed
        else:
            pos = self.pos_embed.float()
            dim = pos.shape[-1]
            grid = pos[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
            scale = ((rows + INTERPOLATE_OFFSET) / side, (cols + INTERPOLATE_OFFSET) / side)
            grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", antialias=False)
            if tuple(grid.shape[-2:]) != (rows, cols):  # pragma: no cover - guards a PyTorch behaviour change
                raise RuntimeError(f"position embedding interpolated to {tuple(grid.shape[-2:])}, "
                                   f"expected {(rows, cols)}")
            grid = grid.permute(0, 2, 3, 1).reshape(1, rows * cols, dim)
            out = torch.cat((pos[:, :1], grid), dim=1).to(self.pos_embed.dtype)
        out = out.detach()
        self._pos_cache[key] = out
        return out

    def _apply(self, fn, recurse: bool = True):  # moving or casting the weights invalidates the cache
        self._pos_cache = {}
        return super()._apply(fn, recurse)

    def load_state_dict(self, *args, **kwargs):
        self._pos_cache = {}
        return super().load_state_dict(*args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        tokens = tokens + self.interpolated_pos_embed(h // PATCH_SIZE, w // PATCH_SIZE)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 0]


# --------------------------------------------------------------------------- weights


def _looks_like(state: dict[str, torch.Tensor]) -> str:
    """' (it looks like dinov2-vit-s14 weights)' when the file's width and depth match another variant."""
    pos = state.get("pos_embed")
    if pos is None or pos.dim() != 3:
        return ""
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.") and k.count(".") >= 2})
    for arch in ARCHS.values():
        if arch.embed_dim == pos.shape[-1] and arch.depth == depth:
            return f" (it looks like {arch.name} weights: pass --extractor {arch.name})"
    return ""


def build_network(arch: Dinov2Arch, state: dict[str, torch.Tensor], source: str = "weights") -> DinoVisionTransformer:
    """The network with ``state`` loaded strictly; WeightsError naming ``source`` and the expected shapes."""
    with torch.device("meta"):
        net = DinoVisionTransformer(arch)
    hint = _looks_like(state)
    if any(k.startswith("register_tokens") for k in state):
        hint += " (a checkpoint with register tokens, *_reg4_pretrain.pth, is another network)"
    checked = check_state_dict(state, net, source, f"{arch.name} (DINOv2 {arch.hub_name})", hint)
    net.load_state_dict(checked, assign=True)
    return net.eval()


def random_state_dict(arch: Dinov2Arch | str, seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights in the official key layout, for tests and benchmarks only (never for metrics).

    Linear and patch weights N(0, 1/fan_in), biases N(0, 0.02); LayerNorm scales 1 + N(0, 0.1) and shifts
    N(0, 0.1); LayerScale gammas U(0.5, 1.5); CLS, mask and position embeddings N(0, 0.5), so the
    interpolated position embedding matters for the output.
    """
    arch = ARCHS[arch] if isinstance(arch, str) else arch
    gen = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: (tuple(v.shape), v.dtype) for k, v in DinoVisionTransformer(arch).state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    for key, (shape, dtype) in shapes.items():
        leaf = key.rsplit(".", 1)[-1]
        if key in ("cls_token", "pos_embed", "mask_token"):
            value = torch.randn(shape, generator=gen) * 0.5
        elif leaf == "gamma":
            value = torch.rand(shape, generator=gen) + 0.5
        elif "norm" in key:
            value = torch.randn(shape, generator=gen) * 0.1 + (1.0 if leaf == "weight" else 0.0)
        elif leaf == "weight":
            fan_in = math.prod(shape[1:])
            value = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
        else:
            value = torch.randn(shape, generator=gen) * 0.02
        out[key] = value.to(dtype)
    return out


# --------------------------------------------------------------------------- extractor


def get_policy(preprocessing: str | VitPolicy | None) -> VitPolicy:
    """A DINOv2 policy by canonical name or alias (None: the default); ConfigError lists the valid ones."""
    if isinstance(preprocessing, VitPolicy):
        return preprocessing
    return DINOV2_PREPROCESSING.get(DEFAULT_DINOV2_PREPROCESSING if preprocessing is None else preprocessing)


class Dinov2Extractor(VitExtractor):
    """A DINOv2 backbone on uint8 RGB images: ``features`` = CLS token after the final norm, float32 [B, D]."""

    layer = "cls-norm"
    metric_names = DINOV2_METRIC_NAMES
    input_size = INPUT_SIZE

    def __init__(self, arch: Dinov2Arch, state_dict: dict[str, torch.Tensor], weights_sha256: str,
                 preprocessing: str | VitPolicy | None = None, device: str | torch.device = "cpu",
                 source: str = "weights") -> None:
        super().__init__(arch, build_network(arch, state_dict, source), get_policy(preprocessing), weights_sha256,
                         device)


def build_dinov2(arch_name: str, weights: str | os.PathLike | None = None, preprocessing: str | None = None,
                 device: str | torch.device = "cpu", *, allow_unverified: bool = False, allow_download: bool = True,
                 weights_sha256: str | None = None) -> Dinov2Extractor:
    """Build the DINOv2 extractor ``arch_name`` (see the module docstring for weights and policies).

    Raises ConfigError (unknown policy or device) and WeightsError (file missing, unreadable, of another
    architecture, or failing a sha256 pin).
    """
    arch = ARCHS[arch_name]
    policy = get_policy(preprocessing)  # a bad name fails before any download
    resolved = resolve_weights(weights_spec(arch), weights, allow_unverified=allow_unverified,
                               allow_download=allow_download, pin=weights_sha256)
    return build_from_weights(Dinov2Extractor, arch, load_state_dict(resolved.path), resolved, policy, device)


for _name in ARCHS:
    register_vit(_name, build_dinov2, DINOV2_METRIC_NAMES, DINOV2_PREPROCESSING)

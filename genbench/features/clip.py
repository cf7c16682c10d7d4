"""OpenAI CLIP image towers (Radford et al. 2021): ``clip-vit-b32``, ``clip-vit-l14``, ``clip-vit-l14-336``.

``features`` = the image embedding ``ln_post(token 0) @ proj`` (512-d for ViT-B/32, 768-d for ViT-L/14), not
normalised, as torch-fidelity's ``clip-vit-*`` extractors give it for FD/KID in CLIP space. CMMD
(:mod:`genbench.metrics.cmmd`) L2-normalises these rows itself, as its reference's embedding model does.
Metrics are named ``fd_clip`` / ``kid_clip``.

The tower is OpenAI's ``VisionTransformer`` (``clip/model.py``), with its state-dict keys under ``visual.``
(``visual.conv1.weight``, ``visual.class_embedding``, ``visual.positional_embedding``, ``visual.ln_pre.*``,
``visual.transformer.resblocks.N.{ln_1,attn.in_proj_weight,attn.out_proj,ln_2,mlp.c_fc,mlp.c_proj}.*``,
``visual.ln_post.*``, ``visual.proj``); the text tower's keys in a full CLIP state dict are ignored. Its
arithmetic: patch convolution without bias; CLS embedding prepended; position embedding added (no
interpolation: the input is at the model's resolution); ``ln_pre``; residual blocks
``x + attn(ln_1(x))``, ``x + mlp(ln_2(x))`` with QuickGELU ``x * sigmoid(1.702 x)``; LayerNorm eps 1e-5.

Policies (:mod:`genbench.features.vit_preprocess`): ``clip-tf1-bilinear`` (torch-fidelity; the default of
``clip-vit-b32`` and ``clip-vit-l14``) and ``clip-cmmd`` (the CMMD reference; the default of
``clip-vit-l14-336``, CMMD's network).

Weights: OpenAI publishes these networks as TorchScript archives (``openaipublic.azureedge.net/clip/models/
<sha256>/<name>.pt``, the sha256 in the URL being the archive's). genbench downloads the archive into
``<cache>/weights/<name>.pt`` (sha256 checked) unless one is given with ``--weights`` or
``$GENBENCH_CLIP_WEIGHTS``, and reads the image tower's tensors out of it with
:func:`genbench.features.torchscript_state.read_torchscript_state`, which runs neither TorchScript nor pickled
code. A state dict converted from an archive is still accepted (given as a path, or cached as
``<cache>/weights/<name>.state_dict.pth``); no hash is published for it, so its actual sha256 is recorded,
unverified unless pinned with ``--weights-sha256``. The sha256 of the file used is recorded with every result.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from .base import MetricNames
from .torchscript_state import is_torchscript_archive, read_torchscript_state
from .vit_base import VitExtractor, build_from_weights, check_state_dict, register_vit
from .vit_preprocess import CLIP_PREPROCESSING, VitPolicy
from .weights import ResolvedWeights, WeightsSpec, cache_root, load_state_dict, resolve_weights

CLIP_METRIC_NAMES = MetricNames("fd_clip", "is_clip", "kid_clip")
OPENAI_BASE_URL = "https://openaipublic.azureedge.net/clip/models"


@dataclass(frozen=True)
class ClipArch:
    name: str
    openai_name: str  # OpenAI's model name / file stem
    archive_sha256: str  # sha256 of OpenAI's TorchScript archive (published in its URL)
    resolution: int
    patch_size: int
    width: int
    layers: int
    embed_dim: int
    default_policy: str

    @property
    def heads(self) -> int:
        return self.width // 64

    @property
    def archive_url(self) -> str:
        return f"{OPENAI_BASE_URL}/{self.archive_sha256}/{self.openai_name}.pt"


ARCHS = {
    a.name: a
    for a in (
        ClipArch("clip-vit-b32", "ViT-B-32", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
                 224, 32, 768, 12, 512, "clip-tf1-bilinear"),
        ClipArch("clip-vit-l14", "ViT-L-14", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
                 224, 14, 1024, 24, 768, "clip-tf1-bilinear"),
        ClipArch("clip-vit-l14-336", "ViT-L-14-336px",
                 "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02", 336, 14, 1024, 24, 768,
                 "clip-cmmd"),
    )
}


def archive_spec(arch: ClipArch) -> WeightsSpec:
    """OpenAI's TorchScript archive for ``arch``: the canonical file, with its published sha256."""
    return WeightsSpec(
        name=f"{arch.name} (OpenAI CLIP {arch.openai_name})",
        url=arch.archive_url,
        sha256=arch.archive_sha256,
        filename=f"{arch.openai_name}.pt",
        env_var="GENBENCH_CLIP_WEIGHTS",
    )


def state_dict_spec(arch: ClipArch) -> WeightsSpec:
    """A state dict a user converted from the archive (no published sha256: OpenAI's hash is the archive's)."""
    return WeightsSpec(
        name=f"{arch.name} (OpenAI CLIP {arch.openai_name}, state dict)",
        url=arch.archive_url,
        sha256=None,
        filename=f"{arch.openai_name}.state_dict.pth",
        env_var="GENBENCH_CLIP_WEIGHTS",
        pin_env_var="GENBENCH_CLIP_WEIGHTS_SHA256",
    )


def state_dict_hint(arch: ClipArch) -> str:
    """The sentence added to 'archive unavailable' errors: a converted state dict works as well."""
    return (f"A state dict of the archive's tensors is accepted too: pass it the same way, or copy it to "
            f"{cache_root() / 'weights' / state_dict_spec(arch).filename}.")


def resolve_clip_weights(arch: ClipArch, weights: str | os.PathLike | None = None, *, allow_unverified: bool = False,
                         allow_download: bool = True, pin: str | None = None) -> tuple[ResolvedWeights, bool]:
    """The weights file for ``arch`` and whether it is a TorchScript archive (else a state dict).

    A path (``weights``, else ``$GENBENCH_CLIP_WEIGHTS``) is checked as OpenAI's archive when it is a
    TorchScript archive (another archive is refused unless ``allow_unverified``), else as a state dict (``pin``
    applies). Without one: a state dict cached under its legacy name, else the cached archive, else a download.
    """
    given = weights if weights is not None else (os.environ.get("GENBENCH_CLIP_WEIGHTS") or None)
    if given is not None:
        path = Path(given).expanduser()
        is_archive = not path.is_file() or is_torchscript_archive(path)  # missing: say which file to get
        spec = archive_spec(arch) if is_archive else state_dict_spec(arch)
        return resolve_weights(spec, weights, allow_unverified=allow_unverified, allow_download=False,
                               pin=pin), is_archive
    if (cache_root() / "weights" / state_dict_spec(arch).filename).is_file():
        return resolve_weights(state_dict_spec(arch), allow_download=False, pin=pin), False
    cached = (cache_root() / "weights" / archive_spec(arch).filename).is_file()
    try:
        return resolve_weights(archive_spec(arch), allow_unverified=allow_unverified, allow_download=allow_download,
                               pin=pin), True
    except WeightsError as exc:
        if cached:
            raise
        raise WeightsError(f"{exc} {state_dict_hint(arch)}") from exc


# --------------------------------------------------------------------------- network


class _Attention(nn.Module):
    """The block's attention parameters, under nn.MultiheadAttention's names (set by the block)."""

    in_proj_weight: nn.Parameter
    in_proj_bias: nn.Parameter
    out_proj: nn.Linear


class _Mlp(nn.Module):
    """The block's MLP layers (set by the block)."""

    c_fc: nn.Linear
    c_proj: nn.Linear


class _Transformer(nn.Module):
    """The tower's blocks (set by the tower)."""

    resblocks: nn.ModuleList


class ResidualAttentionBlock(nn.Module):
    """OpenAI's block, with nn.MultiheadAttention's parameter names (``attn.in_proj_weight`` ...)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(width)
        self.attn = _Attention()
        self.attn.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.attn.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.attn.out_proj = nn.Linear(width, width)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = _Mlp()
        self.mlp.c_fc = nn.Linear(width, 4 * width)
        self.mlp.c_proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, N, W]
        b, n, w = x.shape
        qkv = F.linear(self.ln_1(x), self.attn.in_proj_weight, self.attn.in_proj_bias)
        q, k, v = qkv.reshape(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, w)
        x = x + self.attn.out_proj(attended)
        hidden = self.mlp.c_fc(self.ln_2(x))
        return x + self.mlp.c_proj(hidden * torch.sigmoid(1.702 * hidden))


class VisionTransformer(nn.Module):
    """The image tower: normalised float32 [B, 3, R, R] -> embedding float32 [B, embed_dim]."""

    def __init__(self, arch: ClipArch) -> None:
        super().__init__()
        width, grid = arch.width, arch.resolution // arch.patch_size
        self.conv1 = nn.Conv2d(3, width, kernel_size=arch.patch_size, stride=arch.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(width))
        self.positional_embedding = nn.Parameter(torch.empty(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = _Transformer()
        self.transformer.resblocks = nn.ModuleList(ResidualAttentionBlock(width, arch.heads)
                                                   for _ in range(arch.layers))
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.empty(width, arch.embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat((cls, x), dim=1) + self.positional_embedding.to(x.dtype))
        for block in self.transformer.resblocks:
            x = block(x)
        return self.ln_post(x[:, 0]) @ self.proj


class ClipVisual(nn.Module):
    """Holds the tower as ``visual`` so the state-dict keys are OpenAI's (``visual.*``)."""

    def __init__(self, arch: ClipArch) -> None:
        super().__init__()
        self.visual = VisionTransformer(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x)


def build_network(arch: ClipArch, state: dict[str, torch.Tensor], source: str = "weights") -> ClipVisual:
    """The tower with the ``visual.*`` entries of ``state`` loaded strictly; WeightsError naming ``source``."""
    visual = {k: v for k, v in state.items() if k.startswith("visual.")}
    if not visual:
        raise WeightsError(f"weights file {source} has no 'visual.*' entries: not an OpenAI CLIP state dict "
                           f"({len(state)} keys, e.g. {', '.join(sorted(state)[:3])})")
    hint = ""
    conv = visual.get("visual.conv1.weight")
    pos = visual.get("visual.positional_embedding")
    if conv is not None and pos is not None and conv.dim() == 4:
        for other in ARCHS.values():
            grid = other.resolution // other.patch_size
            if (other is not arch and conv.shape[0] == other.width and conv.shape[-1] == other.patch_size
                    and pos.shape[0] == grid * grid + 1):
                hint = f" (it looks like {other.name} weights: pass --extractor {other.name})"
    with torch.device("meta"):
        net = ClipVisual(arch)
    checked = check_state_dict(visual, net, source, f"{arch.name} (CLIP {arch.openai_name} image tower)", hint)
    net.load_state_dict({k: v.float() for k, v in checked.items()}, assign=True)
    return net.eval()


def random_state_dict(arch: ClipArch | str, seed: int, half_weights: bool = True) -> dict[str, torch.Tensor]:
    """Seeded random ``visual.*`` weights in OpenAI's layout, for tests and benchmarks only.

    ``half_weights``: round the convolution, linear and attention weights to float16 values, as OpenAI's
    checkpoints store them (torch-fidelity casts exactly these to float16 before running in float32).
    """
    arch = ARCHS[arch] if isinstance(arch, str) else arch
    gen = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in ClipVisual(arch).state_dict().items()}
    out = {}
    for key, shape in shapes.items():
        leaf = key.rsplit(".", 1)[-1]
        if key.endswith(("class_embedding", "positional_embedding")):
            value = torch.randn(shape, generator=gen) * 0.5
        elif ".ln_" in key or key.startswith("visual.ln_"):
            value = torch.randn(shape, generator=gen) * 0.1 + (1.0 if leaf == "weight" else 0.0)
        elif key.endswith("proj") and key == "visual.proj":
            value = torch.randn(shape, generator=gen) / math.sqrt(shape[0])
        elif leaf in ("weight", "in_proj_weight"):
            value = torch.randn(shape, generator=gen) / math.sqrt(math.prod(shape[1:]))
        else:
            value = torch.randn(shape, generator=gen) * 0.02
        quantise = half_weights and ".ln_" not in key and not key.startswith("visual.ln_") and key not in (
            "visual.class_embedding", "visual.positional_embedding", "visual.proj")
        out[key] = value.half().float() if quantise else value
    return out


# --------------------------------------------------------------------------- extractor


def get_policy(arch: ClipArch, preprocessing: str | VitPolicy | None) -> VitPolicy:
    if isinstance(preprocessing, VitPolicy):
        return preprocessing
    return CLIP_PREPROCESSING.get(arch.default_policy if preprocessing is None else preprocessing)


class ClipExtractor(VitExtractor):
    """A CLIP image tower on uint8 RGB images: ``features`` = image embedding (not normalised) [B, D]."""

    layer = "image-embedding"
    metric_names = CLIP_METRIC_NAMES

    def __init__(self, arch: ClipArch, state_dict: dict[str, torch.Tensor], weights_sha256: str,
                 preprocessing: str | VitPolicy | None = None, device: str | torch.device = "cpu",
                 source: str = "weights") -> None:
        self.input_size = arch.resolution
        super().__init__(arch, build_network(arch, state_dict, source), get_policy(arch, preprocessing),
                         weights_sha256, device)


def build_clip(arch_name: str, weights: str | os.PathLike | None = None, preprocessing: str | None = None,
               device: str | torch.device = "cpu", *, allow_unverified: bool = False, allow_download: bool = True,
               weights_sha256: str | None = None) -> ClipExtractor:
    """Build the CLIP extractor ``arch_name`` (see the module docstring for weights and policies).

    Raises ConfigError (unknown policy or device) and WeightsError (file missing, unreadable, of another
    architecture, or failing its sha256 check).
    """
    arch = ARCHS[arch_name]
    policy = get_policy(arch, preprocessing)  # a bad name fails before any download
    resolved, is_archive = resolve_clip_weights(arch, weights, allow_unverified=allow_unverified,
                                                allow_download=allow_download, pin=weights_sha256)
    state = read_torchscript_state(resolved.path) if is_archive else load_state_dict(resolved.path)
    return build_from_weights(ClipExtractor, arch, state, resolved, policy, device)


for _name in ARCHS:
    register_vit(_name, build_clip, CLIP_METRIC_NAMES, CLIP_PREPROCESSING)

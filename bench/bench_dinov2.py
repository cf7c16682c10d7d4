"""Benchmark: DINOv2 feature extraction, genbench against torch-fidelity 0.4's ``dinov2-vit-*``, side by side.

Both run the same seeded random weights (the official files cannot be downloaded here; speed does not depend
on the values) on the same uint8 images, in one process, interleaved (genbench, torch-fidelity, genbench ...),
and the median images/s over the repeats is reported, preprocessing included. torch-fidelity's extractor
gets the ``dinov2`` package's DinoVisionTransformer (the official code, snapshot of 2023) through a
redirected ``torch.hub.load``, as it would get the hub model.

Rows: genbench with ``dinov2-tf1-bilinear`` (the same pipeline as torch-fidelity) and with its default
``dinov2-pil-bicubic``; torch-fidelity; and, with ``--onnx``, the genbench network exported to ONNX and run by
ONNX Runtime's CPU provider (not a genbench backend for DINOv2: measured to see whether one would pay).

Usage::

    .venv/bin/python bench/bench_dinov2.py                       # ViT-S/14, 32 images of 64x64, CPU
    .venv/bin/python bench/bench_dinov2.py --arch dinov2-vit-l14 --images 16 --repeats 3 --onnx
    .venv/bin/python bench/bench_dinov2.py --device cuda --images 256 --batch 64
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genbench.features.dinov2 import ARCHS, Dinov2Extractor, random_state_dict  # noqa: E402

_OFFICIAL = {"dinov2-vit-s14": "vit_small", "dinov2-vit-b14": "vit_base", "dinov2-vit-l14": "vit_large",
             "dinov2-vit-g14": "vit_giant2"}
_TF_NAMES = {"dinov2-vit-s14": "dinov2-vit-s-14", "dinov2-vit-b14": "dinov2-vit-b-14",
             "dinov2-vit-l14": "dinov2-vit-l-14", "dinov2-vit-g14": "dinov2-vit-g-14"}


def torch_fidelity_extractor(arch: str, state: dict, device: torch.device):
    import dinov2.models.vision_transformer as vits
    import torch_fidelity.feature_extractor_dinov2 as tfd

    logging.getLogger("dinov2").setLevel(logging.ERROR)
    kwargs = {"ffn_layer": "swiglufused"} if arch == "dinov2-vit-g14" else {}
    model = getattr(vits, _OFFICIAL[arch])(patch_size=14, img_size=518, init_values=1.0, block_chunks=0, **kwargs)
    model.load_state_dict(state)
    original = torch.hub.load
    torch.hub.load = lambda *args, **kw: model
    try:
        return tfd.FeatureExtractorDinoV2(_TF_NAMES[arch], ["dinov2"]).to(device)
    finally:
        torch.hub.load = original


def onnx_runner(extractor: Dinov2Extractor, tmp: Path, batch: int):
    import onnxruntime as ort

    path = tmp / "dinov2.onnx"
    example = torch.zeros(batch, 3, 224, 224)
    inner = extractor.net.cpu()

    class FixedGrid(torch.nn.Module):
        """The same forward at 224 with the interpolated position embedding as a constant buffer."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = inner
            self.register_buffer("pos", inner.interpolated_pos_embed(16, 16).clone())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            tokens = self.inner.patch_embed(x)
            tokens = torch.cat((self.inner.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1) + self.pos
            for block in self.inner.blocks:
                tokens = block(tokens)
            return self.inner.norm(tokens)[:, 0]

    net = FixedGrid().eval()
    torch.onnx.export(net, (example,), str(path), input_names=["x"], output_names=["f"],
                      dynamic_axes={"x": {0: "b"}, "f": {0: "b"}}, opset_version=17, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(images: torch.Tensor) -> torch.Tensor:
        x = extractor.prepare(images).numpy()
        return torch.from_numpy(session.run(["f"], {"x": x})[0])

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="dinov2-vit-s14", choices=sorted(ARCHS))
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--size", type=int, default=64, help="side of the square input images (resized to 224)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--onnx", action="store_true", help="also time an ONNX Runtime export (CPU)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    state = random_state_dict(args.arch, 0)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, size=(args.images, 3, args.size, args.size), dtype=np.uint8))

    ours_tf1 = Dinov2Extractor(ARCHS[args.arch], state, "0" * 64, "dinov2-tf1-bilinear", device=device)
    ours_pil = Dinov2Extractor(ARCHS[args.arch], state, "0" * 64, "dinov2-pil-bicubic", device=device)
    theirs = torch_fidelity_extractor(args.arch, state, device)
    runners = {
        "genbench dinov2-tf1-bilinear": lambda x: ours_tf1(x.to(device))["features"],
        "genbench dinov2-pil-bicubic": lambda x: ours_pil(x)["features"],
        "torch-fidelity dinov2 (tf1 bilinear)": lambda x: theirs(x.to(device))[0],
    }
    if args.onnx and device.type == "cpu":
        import tempfile

        tmp = Path(tempfile.mkdtemp())
        runners["genbench network via onnxruntime (tf1-bilinear)"] = onnx_runner(
            Dinov2Extractor(ARCHS[args.arch], state, "0" * 64, "dinov2-tf1-bilinear"), tmp, args.batch)

    def timed(run) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(images), args.batch):
                run(images[i:i + args.batch])
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(images) / (time.perf_counter() - start)

    with torch.no_grad():  # warm-up, and a parity check of the two tf1 rows
        a = runners["genbench dinov2-tf1-bilinear"](images[:2]).double().cpu()
        b = runners["torch-fidelity dinov2 (tf1 bilinear)"](images[:2]).double().cpu()
        for run in runners.values():
            run(images[:2])
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.repeats):
        for name, run in runners.items():
            rates[name].append(timed(run))
    base = statistics.median(rates["torch-fidelity dinov2 (tf1 bilinear)"])
    doc = {"arch": args.arch, "device": str(device), "threads": torch.get_num_threads(), "images": args.images,
           "size": args.size, "batch": args.batch, "repeats": args.repeats, "torch": torch.__version__,
           "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
           "max_rel_feature_diff_genbench_vs_torch_fidelity": float((a - b).abs().max() / b.abs().mean()),
           "images_per_s": {k: statistics.median(v) for k, v in rates.items()}}
    print(f"{args.arch} on {device} ({torch.get_num_threads()} threads), {args.images} images {args.size}x{args.size}"
          f" -> 224, batch {args.batch}, median of {args.repeats}")
    for name, rate in doc["images_per_s"].items():
        print(f"  {name:<52} {rate:8.2f} img/s   {rate / base:5.2f}x torch-fidelity")
    print(f"  features genbench vs torch-fidelity: max rel diff {doc['max_rel_feature_diff_genbench_vs_torch_fidelity']:.2g}")
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()

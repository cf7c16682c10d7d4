"""Log fd_fmnist every N steps of a plain PyTorch training loop with genbench.Evaluator.

    python examples/training_loop_fd.py                       # CPU, ~300 steps, well under a minute
    python examples/training_loop_fd.py --device cuda --steps 2000

A tiny MLP GAN learns Fashion-MNIST; every ``--every`` steps the evaluator is reset, fed ``--eval-n``
samples of the generator straight from the training device (float in [0, 1], [B, 1, 28, 28]) and asked
for the Frechet distance to the bundled "fashion-mnist:train" statistics (fmnist-cnn features). The
reference statistics are loaded and the network built once, in the Evaluator's constructor.
"""
from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import genbench

DATA = Path("/usr/share/datasets/fashion-mnist")


def load_fashion_mnist(root: Path, limit: int) -> torch.Tensor:
    """Training images as float [N, 1, 28, 28] in [0, 1] (from the idx files)."""
    with gzip.open(root / "train-images-idx3-ubyte.gz", "rb") as fh:
        raw = np.frombuffer(fh.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    return torch.from_numpy(raw[:limit].astype(np.float32) / 255.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--every", type=int, default=100, help="log fd_fmnist every N steps")
    ap.add_argument("--eval-n", type=int, default=500, help="generated samples per evaluation")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads for torch (1: these models are tiny, and more threads only contend)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)

    real = load_fashion_mnist(args.data, 20_000).to(dev)
    z_dim = 32
    gen = nn.Sequential(nn.Linear(z_dim, 256), nn.ReLU(), nn.Linear(256, 784), nn.Sigmoid()).to(dev)
    disc = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1)).to(dev)
    opt_g = torch.optim.Adam(gen.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()

    t0 = time.perf_counter()
    evaluator = genbench.Evaluator("fashion-mnist:train", metrics=["fd_fmnist"], device=args.device, batch_size=256)
    print(f"evaluator ready in {time.perf_counter() - t0:.2f} s (reference n={evaluator.reference.n})")

    def evaluate(step: int) -> None:
        t = time.perf_counter()
        gen.eval()
        evaluator.reset()
        with torch.no_grad():
            for start in range(0, args.eval_n, 250):
                z = torch.randn(min(250, args.eval_n - start), z_dim, device=dev)
                evaluator.update(gen(z).view(-1, 1, 28, 28))  # float in [0, 1], stays on `dev`
        fd = evaluator.compute().value("fd_fmnist")
        gen.train()
        print(f"step {step:5d}  fd_fmnist {fd:10.3f}  ({args.eval_n} samples, {time.perf_counter() - t:.2f} s)")

    evaluate(0)
    for step in range(1, args.steps + 1):
        x = real[torch.randint(0, real.shape[0], (args.batch,), device=dev)]
        fake = gen(torch.randn(args.batch, z_dim, device=dev)).view(-1, 1, 28, 28)
        ones, zeros = torch.ones(args.batch, 1, device=dev), torch.zeros(args.batch, 1, device=dev)
        loss_d = bce(disc(x), ones) + bce(disc(fake.detach()), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = bce(disc(fake), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        if step % args.every == 0:
            evaluate(step)
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()

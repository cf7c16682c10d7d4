"""A Hugging Face Accelerate training loop that logs fd_fmnist every N steps with genbench.Evaluator.

    pip install accelerate                                   # not a genbench dependency
    python examples/accelerate_loop.py                       # CPU, 200 steps, about a minute
    accelerate launch --num_processes 2 examples/accelerate_loop.py --steps 2000   # several processes

The model is the DCGAN of genbench's bundled baselines (``genbench.baselines.families.nets``). The
Evaluator is built once, on ``accelerator.device``; every ``--every`` steps each process resets it, feeds
its share of ``--eval-n`` samples (float [B, 1, 28, 28] in [0, 1], straight from the device) and calls
``compute()``. With several processes Accelerate has initialised torch.distributed, and ``compute()``
merges the float64 sums of all processes exactly, so every process gets the same number, equal to one
process scoring all the samples; ``accelerator.log`` records it (with ``--log-with``), and the main
process prints it.
"""
from __future__ import annotations

import argparse
import gzip
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed

import genbench
from genbench.baselines.families.nets import ConvDiscriminator, ConvGenerator, dcgan_init

DATA = Path("/usr/share/datasets/fashion-mnist")


def load_fashion_mnist(root: Path, limit: int) -> torch.Tensor:
    """Training images as float [N, 1, 28, 28] in [0, 1] (from the idx files)."""
    with gzip.open(root / "train-images-idx3-ubyte.gz", "rb") as fh:
        raw = np.frombuffer(fh.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    return torch.from_numpy(raw[:limit].astype(np.float32) / 255.0)


@torch.no_grad()
def evaluate(accelerator: Accelerator, evaluator: genbench.Evaluator, generator: torch.nn.Module, z_dim: int,
             n_samples: int, chunk: int = 250, seed: int = 0) -> float:
    """FD of ``n_samples`` fresh samples, split over the processes; every process must call this."""
    rank, world = accelerator.process_index, accelerator.num_processes
    share = n_samples // world + (rank < n_samples % world)
    rng = torch.Generator(device=accelerator.device).manual_seed(seed * 1_000_003 + rank)
    generator.eval()
    evaluator.reset()
    for start in range(0, share, chunk):
        z = torch.randn(min(chunk, share - start), z_dim, device=accelerator.device, generator=rng)
        evaluator.update((generator(z) + 1) / 2)  # tanh [-1, 1] -> [0, 1]; stays on the device
    generator.train()
    return evaluator.compute().value("fd_fmnist")


def main(argv: Sequence[str] | None = None) -> list[tuple[int, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--every", type=int, default=100, help="log fd_fmnist every N steps")
    ap.add_argument("--eval-n", type=int, default=1000, help="generated samples per evaluation (all processes)")
    ap.add_argument("--batch", type=int, default=128, help="training batch per process")
    ap.add_argument("--limit", type=int, default=20_000, help="training images read from --data")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cpu", action="store_true", help="run on the CPU even where a GPU is present")
    ap.add_argument("--log-with", default=None, help="an Accelerate tracker (tensorboard, wandb, ...)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the models are tiny)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    accelerator = Accelerator(cpu=args.cpu, log_with=args.log_with)
    if args.log_with:
        accelerator.init_trackers("genbench-accelerate", config=vars(args) | {"data": str(args.data)})
    set_seed(0)
    z_dim = 64

    real = load_fashion_mnist(args.data, args.limit)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(real), batch_size=args.batch, shuffle=True,
                                         drop_last=True)
    gen, disc = ConvGenerator(z_dim, 48), ConvDiscriminator(1, 48)
    dcgan_init(gen)
    dcgan_init(disc)
    opt_g = torch.optim.Adam(gen.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), 2e-4, betas=(0.5, 0.999))
    gen, disc, opt_g, opt_d, loader = accelerator.prepare(gen, disc, opt_g, opt_d, loader)
    # Built once: the bundled reference statistics loaded, fmnist-cnn on this process's device.
    evaluator = genbench.Evaluator("fashion-mnist:train", metrics=["fd_fmnist"], device=str(accelerator.device),
                                   batch_size=250)

    history: list[tuple[int, float]] = []
    step = 0
    while step < args.steps:
        for (x,) in loader:
            x = x * 2 - 1
            fake = gen(torch.randn(x.shape[0], z_dim, device=accelerator.device))
            d_real, d_fake = disc(x), disc(fake.detach())
            loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                      + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
            opt_d.zero_grad()
            accelerator.backward(loss_d)
            opt_d.step()
            d_fake = disc(fake)
            loss_g = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
            opt_g.zero_grad()
            accelerator.backward(loss_g)
            opt_g.step()
            step += 1
            if step % args.every == 0:
                fd = evaluate(accelerator, evaluator, accelerator.unwrap_model(gen), z_dim, args.eval_n)
                history.append((step, fd))
                accelerator.log({"fd_fmnist": fd, "loss_d": loss_d.item(), "loss_g": loss_g.item()}, step=step)
                accelerator.print(f"step {step:5d}  fd_fmnist {fd:10.3f}  ({args.eval_n} samples)", flush=True)
            if step >= args.steps:
                break
    accelerator.end_training()
    return history


if __name__ == "__main__":
    main()

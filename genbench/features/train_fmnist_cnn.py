"""Train the ``fmnist-cnn`` feature extractor on the Fashion-MNIST train split, reproducibly on CPU.

    python -m genbench.features.train_fmnist_cnn --out genbench/weights/fmnist-cnn.pt --seed 0 --epochs 8

Writes the state dict (atomically, byte-reproducible for the same seed, epochs and thread count) and a
JSON record beside it (``fmnist-cnn.json``: test accuracy, seed, epochs, torch version, command,
weights SHA-256, wall time). After retraining, paste the printed SHA-256 into
``genbench/features/fmnist_cnn.py`` (WEIGHTS_SHA256).

Determinism: ``torch.manual_seed``, ``torch.use_deterministic_algorithms(True)``, a fixed thread count,
and a seeded generator for shuffling and augmentation (random horizontal flips). The input pipeline is
the extractor's ``luma-bilinear28`` policy applied to gray 28x28 images (luma of a gray image is itself).
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..sources.datasets import load_dataset_arrays
from ..util.atomic import atomic_path, write_text_atomic
from .fmnist_cnn import PREPROCESSING, WEIGHTS_PATH, FmnistNet, file_sha256, normalise_gray


def _inputs(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, 28, 28] -> normalised float32 [N, 1, 28, 28]."""
    return normalise_gray(torch.from_numpy(np.array(images, dtype=np.float32))[:, None])


@torch.no_grad()
def accuracy(net: FmnistNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``net`` (in eval mode) on normalised inputs ``x`` [N,1,28,28], labels ``y`` [N]."""
    net.eval()
    pred = torch.cat([net(x[i : i + batch_size])[1].argmax(1) for i in range(0, len(x), batch_size)])
    return float((pred == y).double().mean())


def train(
    seed: int,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    data_dir: str | None,
    limit: int | None = None,
    log=print,
) -> tuple[FmnistNet, list[dict]]:
    """Train from scratch; returns the network (eval mode) and per-epoch records (loss, test accuracy)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train_images, train_labels = load_dataset_arrays("fashion-mnist:train", data_dir)
    test_images, test_labels = load_dataset_arrays("fashion-mnist:test", data_dir)
    if limit is not None:
        train_images, train_labels = train_images[:limit], train_labels[:limit]
        test_images, test_labels = test_images[:limit], test_labels[:limit]
    x_train, y_train = _inputs(train_images), torch.from_numpy(np.array(train_labels, dtype=np.int64))
    x_test, y_test = _inputs(test_images), torch.from_numpy(np.array(test_labels, dtype=np.int64))

    net = FmnistNet()
    steps_per_epoch = (len(x_train) + batch_size - 1) // batch_size
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15
    )
    history = []
    start = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(x_train), generator=generator)
        total_loss = 0.0
        for i in range(0, len(x_train), batch_size):
            idx = order[i : i + batch_size]
            x, y = x_train[idx], y_train[idx]
            flip = torch.rand(len(idx), generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            loss = F.cross_entropy(net(x)[1], y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += float(loss.detach()) * len(idx)
        acc = accuracy(net, x_test, y_test)
        record = {
            "epoch": epoch + 1,
            "train_loss": total_loss / len(x_train),
            "test_accuracy": acc,
            "elapsed_s": round(time.perf_counter() - start, 1),
        }
        history.append(record)
        log(
            f"epoch {epoch + 1}/{epochs}: loss {record['train_loss']:.4f}, test accuracy {acc:.4f}, "
            f"{record['elapsed_s']:.0f} s"
        )
    net.eval()
    return net, history


def state_dict_bytes(net: FmnistNet) -> bytes:
    """``torch.save`` of the state dict into memory (so the archive name, hence the bytes, do not depend on paths)."""
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.getvalue()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH, help="weights file to write (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed for init, shuffling, flips (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=128, help="(default: %(default)s)")
    parser.add_argument(
        "--lr", type=float, default=2e-3, help="peak one-cycle AdamW learning rate (default: %(default)s)"
    )
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="(default: %(default)s)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; part of reproducibility; 1 is fastest on a shared CPU (default: %(default)s)",
    )
    parser.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST IDX files (optional)")
    parser.add_argument("--dry-run", action="store_true", help="train 1 epoch on 512 images, write nothing")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    start = time.perf_counter()
    epochs = 1 if args.dry_run else args.epochs
    net, history = train(
        args.seed,
        epochs,
        args.batch_size,
        args.lr,
        args.weight_decay,
        args.data_dir,
        limit=512 if args.dry_run else None,
        log=_log,
    )
    wall = time.perf_counter() - start
    if args.dry_run:
        _log(f"dry run done in {wall:.1f} s; nothing written")
        return 0

    with atomic_path(args.out) as tmp:
        tmp.write_bytes(state_dict_bytes(net))
    sha = file_sha256(args.out)
    record = {
        "extractor": "fmnist-cnn",
        "weights_file": args.out.name,
        "weights_sha256": sha,
        "preprocessing": PREPROCESSING,
        "train_split": "fashion-mnist:train",
        "test_split": "fashion-mnist:test",
        "test_accuracy": history[-1]["test_accuracy"],
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "optimizer": "AdamW + OneCycleLR (pct_start 0.15)",
        "augmentation": "random horizontal flip (p=0.5)",
        "threads": args.threads,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "command": "python -m genbench.features.train_fmnist_cnn " + shlex.join(sys.argv[1:] if argv is None else argv),
        "wall_time_s": round(wall, 1),
        "history": history,
    }
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    _log(
        f"wrote {args.out} (sha256 {sha}) and {args.out.with_suffix('.json')}; "
        f"test accuracy {record['test_accuracy']:.4f}; wall time {wall:.0f} s"
    )
    print(sha)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

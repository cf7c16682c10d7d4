"""Options shared by the CLI verbs: defined once here, imported by every verb module."""
from __future__ import annotations

from collections.abc import Callable

import click


def device_option(default: str | None = "cpu", help: str = "cpu, cuda, cuda:1, ...") -> Callable:
    """``--device``, checked against this machine when the command line is parsed (before any work)."""
    from ..extraction.devices import check_device

    def checked(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        return value if value is None else check_device(value, "--device")

    return click.option("--device", default=default, show_default=True, help=help, callback=checked)


def seed_option(default: int | None = 0, help: str = "Seed for every random step.") -> Callable:
    """``--seed``: a non-negative integer below 2**32 (what every random generator here accepts)."""
    return click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=default, help=help)


def _batch_help() -> str:
    from ..config import BATCH_SIZES, DEFAULT_BATCH_SIZE

    rule = "; ".join(f"{b} for {name} on {dev}" for (name, dev), b in sorted(BATCH_SIZES.items()))
    return (f"Images per network batch. Default: by --extractor and device type: {rule}; "
            f"{DEFAULT_BATCH_SIZE} otherwise (measured: reports/bench.md).")


def extraction_options(fn: Callable) -> Callable:
    """Options shared by every verb that runs an extractor."""
    decorators = [
        click.option("--extractor", default=None, help="Feature extractor (default: follow the reference, else inception-v3)."),
        click.option("--weights", type=click.Path(dir_okay=False), default=None,
                     help="Local weights file for the extractor (Inception: also $GENBENCH_INCEPTION_WEIGHTS)."),
        click.option("--allow-unverified-weights", is_flag=True,
                     help="Accept a --weights file whose sha256 is not the published one (its own sha256 is recorded)."),
        click.option("--weights-sha256", default=None,
                     help="Required sha256 of weights that have no published one (DINOv2; also "
                          "$GENBENCH_DINOV2_WEIGHTS_SHA256)."),
        click.option("--preprocessing", "--resize", "preprocessing", default=None,
                     help="Preprocessing policy, e.g. tf1-bilinear, torch-bilinear, pil-bicubic (default: the extractor's)."),
        click.option("--batch-size", type=click.IntRange(min=1), default=None, help=_batch_help()),
        device_option(),
        click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="Parallel decoding workers."),
        click.option("--data-dir", type=click.Path(file_okay=False), default=None, envvar="GENBENCH_DATA",
                     help="Where data sets such as fashion-mnist are found."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bars or messages on stderr (results still print)."),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the feature cache for this run."),
        click.option("--precision", type=click.Choice(["float32", "tf32", "bf16"]), default="float32",
                     help="Extractor arithmetic; tf32 (CUDA) and bf16 are faster, and score also prints their "
                          "deviation from float32 on a subset."),
    ]
    for decorate in reversed(decorators):
        fn = decorate(fn)
    return fn


def _extract_options(kw: dict):
    from ..config import ExtractOptions

    return ExtractOptions(
        extractor=kw.pop("extractor"),
        weights=kw.pop("weights"),
        allow_unverified_weights=kw.pop("allow_unverified_weights"),
        weights_sha256=kw.pop("weights_sha256"),
        preprocessing=kw.pop("preprocessing"),
        batch_size=kw.pop("batch_size"),
        device=kw.pop("device"),
        workers=kw.pop("workers"),
        data_dir=kw.pop("data_dir"),
        progress=not kw.get("quiet", False),
        cache=not kw.pop("no_cache"),
        precision=kw.pop("precision"),
    )

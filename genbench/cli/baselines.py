"""``genbench baselines list | train | sample | spread`` and ``genbench leaderboard``."""
from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

import click
import numpy as np

from ..config import BoardOptions, ExtractOptions, SampleOptions, SpreadOptions
from ..errors import ConfigError
from .options import config_option, config_options, device_option, seed_option
from .results import emit_json, json_option


def _typed_command() -> str:
    """The command as typed, spelled as the console script (``python -m genbench ...`` reads the same)."""
    return "genbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])


@click.group()
def baselines() -> None:
    """The bundled baseline generators (dcgan, wgan-gp, vae, glo, flow, cgan, cyclegan)."""


@baselines.command("list")
@json_option("the families")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file.")
def baselines_list(json_out: str | None, overwrite: bool) -> None:
    """List the families and their bundled checkpoints."""
    from genbench.baselines.api import list_families

    from ..results.outputs import check_output_file

    check_output_file(json_out, "--json", overwrite)
    rows = list_families()
    if json_out:
        emit_json(json.dumps(rows, indent=2), json_out)
        if json_out == "-":
            return
    for r in rows:
        ckpt = f"{r['steps']} steps, {r['wall_time_s']:.0f} s" if r["checkpoint"] else "no bundled checkpoint"
        click.echo(f"{r['name']:<14} {ckpt:<26} {r['paper']}")


@baselines.command("sample")
@click.argument("model")
@click.option("-n", "n", type=click.IntRange(min=1), required=True, help="Number of samples.")
@seed_option()
@click.option("-o", "--output", required=True, help="Image folder, or a .npz (images: N x H x W x C uint8).")
@click.option("--labels", default=None, help="cgan only: comma-separated classes, repeated to fill n.")
@config_option(SampleOptions, "batch_size")
@device_option()
@click.option("--allow-repeats", is_flag=True,
              help="Write -n samples even where the model makes fewer distinct ones (a translation model: its "
                   "held-out sources), repeating some; refused without this flag.")
@click.option("--overwrite", is_flag=True)
@config_option(ExtractOptions, "progress", help="No messages on stderr.")
def baselines_sample(model: str, n: int, seed: int, output: str, labels: str | None, batch_size: int, device: str,
                     allow_repeats: bool, overwrite: bool, quiet: bool) -> None:
    """Sample MODEL (a family name for its bundled checkpoint, or a checkpoint path) to OUTPUT."""

    from genbench.baselines.api import load_checkpoint, repeated_samples, repeats_refusal, sample_images_and_labels

    from ..results.outputs import check_output_file, check_output_folder
    from ..util.atomic import atomic_path

    out = Path(output)
    if out.suffix == ".npz":
        check_output_file(out, "-o", overwrite)
    else:
        check_output_folder(out, "-o", overwrite)
    wanted = None
    if labels:
        try:
            classes = [int(x) for x in labels.split(",")]
        except ValueError:
            raise ConfigError(f"--labels {labels!r}: expected comma-separated class numbers such as 0,1,2") from None
        wanted = np.resize(np.asarray(classes, dtype=np.int64), n)
    family = load_checkpoint(model, device=device)
    repeated = repeated_samples(family, n, seed, labels=wanted)  # the latents only: refused before any sampling
    if repeated and not allow_repeats:
        raise ConfigError(repeats_refusal(family, n, repeated))
    images, drawn = sample_images_and_labels(family, n, seed, batch_size=batch_size, labels=wanted,
                                             allow_repeats=allow_repeats)
    if out.suffix == ".npz":
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as fh:
                arrays = {"images": images if images.ndim == 4 else images[..., None]}  # N x H x W x C
                if drawn is not None:
                    arrays["labels"] = drawn
                np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub matches **kwargs to allow_pickle
    else:
        write_png_folder(out, images)
    if repeated:  # said even under --quiet: the output is not what -n alone suggests
        click.echo(f"note: --allow-repeats: {repeated} of the {n} samples repeat earlier ones; "
                   f"{n - repeated} are distinct", err=True)
    if not quiet:
        click.echo(f"wrote {n} samples of {family.run_name} (seed {seed}) to {out}", err=True)


@baselines.command("train", context_settings={"show_default": True})
@click.argument("name")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML config (default: the bundled configs/NAME.toml).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Checkpoint path (default out/baselines/NAME.pt).")
@click.option("--steps", type=int, default=None, help="Override train.steps.")
@click.option("--time-limit", "time_limit", type=click.FloatRange(min=0), default=None,
              help="Override train.time_limit_s: stop after this many seconds of training (0 = no limit).")
@click.option("--stop-after", type=click.IntRange(min=1), default=None,
              help="Stop after this many steps, the schedules still planned for train.steps, with no time limit "
                   "(repeats a run that a time limit stopped).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None, help="Override the config's seed.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--dry-run", is_flag=True,
              help="A few steps on small batches, to check that everything runs; writes a checkpoint only with --out.")
@click.option("--bundle", is_flag=True,
              help="Replace the bundled checkpoints/NAME.pt (maintainers) and record it in manifest.json.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out checkpoint.")
def baselines_train(name: str, config_path: str | None, out: str | None, steps: int | None, time_limit: float | None,
                    stop_after: int | None, seed: int | None, device: str | None, threads: int | None, dry_run: bool,
                    bundle: bool, overwrite: bool) -> None:
    """Train baseline NAME: a family, or a config variant of one such as dcgan-stacked."""
    from genbench.baselines.checkpoint import CHECKPOINT_DIR, record_bundled
    from genbench.baselines.train import train

    if bundle:
        if out is not None or dry_run:
            raise ConfigError("--bundle writes the bundled checkpoints/NAME.pt; do not combine it with --out or --dry-run")
        out = str(CHECKPOINT_DIR / f"{name}.pt")
    path = train(name, config=config_path, out=out, steps=steps, dry_run=dry_run, device=device, seed=seed,
                 threads=threads, overwrite=overwrite or bundle, stop_after=stop_after, time_limit=time_limit)
    if bundle and path is not None:
        entry = record_bundled(name, path, _typed_command())
        click.echo(f"[{name}] recorded in manifest: sha256 {entry['sha256']}", err=True)
    if path is not None:
        click.echo(str(path))


@baselines.command("spread", context_settings={"show_default": True})
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Markdown file to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--families", default=None, help="Comma-separated subset of the baselines (default: all).")
@config_options(SpreadOptions, "seeds", "n")
@click.option("--train-seed", "train_seed", multiple=True, metavar="NAME=CHECKPOINT",
              help="Also score a checkpoint of baseline NAME trained from another seed.")
def baselines_spread(out: str, overwrite: bool, families: str | None, seeds: str, n: int,
                     train_seed: tuple[str, ...]) -> None:
    """Write the spread of fd_fmnist across sampling (and training) seeds."""
    from genbench.baselines.spread import spread_rows, to_markdown

    from ..results.outputs import check_output_file
    from ..util.atomic import write_text_atomic

    check_output_file(out, "--out", overwrite)
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {seeds!r}: expected comma-separated integers such as 0,1,2") from None
    if len(seed_list) < 2:
        raise ConfigError(f"--seeds {seeds!r}: a spread needs at least two seeds")
    extra: dict[str, list[str]] = {}
    for entry in train_seed:
        name, sep, path = entry.partition("=")
        if not sep or not Path(path).is_file():
            raise ConfigError(f"--train-seed {entry!r}: expected NAME=CHECKPOINT with an existing checkpoint file")
        extra.setdefault(name.strip(), []).append(path)
    names = [f.strip() for f in families.split(",")] if families else None
    rows = spread_rows(names, seed_list, n, extra, log=lambda s: click.echo(s, err=True))
    text = to_markdown(rows, seed_list, _typed_command())
    write_text_atomic(Path(out), text)
    click.echo(text)


def write_png_folder(out: Path, images: np.ndarray) -> None:
    """Write uint8 images [N, H, W(, C)] as 000000.png ... into ``out``, all or nothing.

    The PNGs go to a hidden temporary folder beside ``out``; a new ``out`` appears only once all are written
    (renamed into place), and into an existing folder they are moved one by one only after all were written.
    A failure half way (a full disk, Ctrl-C) leaves no partial folder and no stray files.
    """
    import shutil
    import tempfile

    from PIL import Image

    from ..util.atomic import current_umask

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for i, im in enumerate(images):
            Image.fromarray(im).save(staging / f"{i:06d}.png", format="PNG")
        if not out.exists():
            os.chmod(staging, 0o777 & ~current_umask())
            os.replace(staging, out)
            return
        for item in sorted(staging.iterdir()):
            os.replace(item, out / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@click.command(context_settings={"show_default": True})
@config_option(BoardOptions, "n")
@seed_option()
@config_option(BoardOptions, "out_dir")
@click.option("--overwrite", is_flag=True, help="Write into an --out folder that is not empty (its leaderboard files are replaced).")
@click.option("--families", default=None, help="Comma-separated subset of the baseline families.")
@click.option("--no-reference-rows", is_flag=True, help="Only the baselines.")
@config_option(ExtractOptions, "data_dir")
@config_options(BoardOptions, "batch_size", "reference_n")
@click.option("--add", "added", multiple=True, metavar="NAME=SPEC",
              help="Put your model on the board: SPEC is an image folder/archive/.npz, a baseline checkpoint (.pt), "
                   "or py:MODULE:FUNCTION / py:FILE.py:FUNCTION called as fn(n, seed) -> uint8 images. Repeatable.")
@config_option(BoardOptions, "inception")
@config_options(ExtractOptions, "weights", "allow_unverified_weights",
                help={"weights": "Inception-v3 weights file (else $GENBENCH_INCEPTION_WEIGHTS or the cache); implies "
                                 "--inception on.",
                      "allow_unverified_weights": "Accept an Inception weights file with another sha256."})
@click.option("--history", "history_file", default=None, envvar="GENBENCH_HISTORY",
              help="Also append every row (named by its model) to this SQLite results history.")
@config_option(BoardOptions, "bootstrap")
@config_option(ExtractOptions, "progress", help="No progress or messages on stderr (the table still prints).")
def leaderboard(n: int, seed: int, out_dir: str, families: str | None, no_reference_rows: bool, data_dir: str | None,
                batch_size: int, reference_n: int, added: tuple[str, ...], inception: str, weights: str | None,
                allow_unverified_weights: bool, history_file: str | None, bootstrap: int, quiet: bool,
                overwrite: bool) -> None:
    """Score every bundled baseline and the reference rows; render tables and pictures into --out."""
    from .. import leaderboard as lb
    from ..baselines import board
    from ..results.history import open_history
    from ..results.outputs import check_output_folder

    check_output_folder(out_dir, "--out", overwrite)
    started = time.perf_counter()
    history = open_history(history_file, required=False)  # a bad path fails before any scoring
    if weights is not None and inception == "off":
        raise ConfigError("--weights is given but --inception off: drop one of them")
    wanted = [f.strip() for f in families.split(",")] if families else None
    specs = board.baseline_row_specs(wanted)
    if wanted:
        unknown = sorted(set(wanted) - {s.name for s in specs})
        if unknown:
            raise ConfigError(f"--families: no bundled Fashion-MNIST checkpoint for {', '.join(unknown)} "
                              "(the leaderboard ranks the gray 28x28 baselines; see `genbench baselines list`)")
    added_specs = [lb.added_row_spec(entry, data_dir, board.BOARD) for entry in added]
    specs += added_specs
    if not no_reference_rows:
        specs += board.reference_row_specs(data_dir)
    names = [s.name for s in specs]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise ConfigError(f"--add: row name(s) {', '.join(clashes)} already on the board; pick another NAME")
    for spec in added_specs:  # image counts and a first small sample, before any row is scored
        if spec.preflight is not None:
            spec.preflight(n, seed)
    plans = [board.FMNIST_PLAN]
    extra_plan = lb.inception_plan("on" if weights else inception, weights, allow_unverified_weights)
    if extra_plan is not None:
        plans.append(extra_plan)
    log = (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))
    rows, artifacts = lb.score_rows(specs, n, seed, data_dir=data_dir, batch_size=batch_size, log=log, plans=plans,
                                    progress=not quiet,
                                    reference_n=reference_n, bootstrap=bootstrap, board=board.BOARD)
    out = Path(out_dir)
    pictures = {}
    if "cgan" in names:
        pictures.update(board.conditional_grid(out, seed))
    if "glo" in names:
        pictures.update(board.glo_pictures(out, seed, data_dir))
    command = f"genbench leaderboard -n {n} --seed {seed} --out {out_dir} --overwrite" + (f" --families {families}" if families else "")
    command += " --no-reference-rows" if no_reference_rows else ""
    command += f" --reference-n {reference_n}" if reference_n != BoardOptions.reference_n else ""
    command += f" --bootstrap {bootstrap}" if bootstrap != BoardOptions.bootstrap else ""
    command += "".join(f" --add {shlex.quote(entry)}" for entry in added)
    if extra_plan is not None:
        command += " --inception on" + (" --allow-unverified-weights" if allow_unverified_weights else "")
    lb.render(rows, artifacts, out, command, pictures, board.BOARD)
    if history is not None:
        ids = [history.add(doc, name=doc["provenance"]["name"], kind="leaderboard")
               for doc in lb.row_documents(rows, artifacts["provenance"], command)]
        if not quiet:
            click.echo(f"recorded rows #{ids[0]}..#{ids[-1]} in {history.path}", err=True)
    click.echo((out / "leaderboard.md").read_text())
    if not quiet:
        click.echo(f"wrote {out}/ in {time.perf_counter() - started:.0f} s", err=True)

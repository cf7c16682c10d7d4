"""``genbench cache``: inspect and clear the feature cache (see :mod:`genbench.extraction.cache`)."""
from __future__ import annotations

import json

import click

from .results import emit_json, json_option


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


@click.group()
def cache() -> None:
    """The feature cache: extracted features of unchanged inputs are reused (score/extract/stats --no-cache skip it)."""


@cache.command("info")
@json_option("the figures")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file.")
def cache_info(json_out: str | None, overwrite: bool) -> None:
    """Where the cache is and how much it holds ($GENBENCH_CACHE moves it)."""
    from ..extraction.cache import FeatureCache
    from ..results.outputs import check_output_file

    check_output_file(json_out, "--json", overwrite)
    info = FeatureCache().info()
    if json_out:
        emit_json(json.dumps(info.to_dict(), indent=2), json_out)
        if json_out == "-":
            return
    click.echo(f"feature cache: {info.root}")
    click.echo(f"entries:       {info.entries} ({_size(info.entry_bytes)})")
    click.echo(f"partial:       {info.partial_extractions} interrupted extraction(s) ({_size(info.partial_bytes)})")


@cache.command("clear")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def cache_clear(yes: bool) -> None:
    """Delete every cached feature entry and partial extraction (weights and other caches are kept)."""
    from ..extraction.cache import FeatureCache

    store = FeatureCache()
    info = store.info()
    if info.entries == 0 and info.partial_extractions == 0:
        click.echo(f"feature cache {info.root} is already empty", err=True)
        return
    what = (f"{info.entries} entries and {info.partial_extractions} partial extraction(s), "
            f"{_size(info.entry_bytes + info.partial_bytes)}, in {info.root}")
    if not yes and not click.confirm(f"delete {what}?", err=True):
        click.echo("nothing deleted", err=True)
        return
    store.clear()
    click.echo(f"deleted {what}", err=True)

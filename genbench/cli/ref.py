"""``genbench ref``: list, show, build, verify and import reference statistics."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click
import numpy as np

from ..config import ExtractOptions
from ..errors import ConfigError, ReferenceStatsError
from .options import config_option, config_options
from .prepare import prep_options, prepared_input
from .results import emit_json, json_option


@click.group()
def ref() -> None:
    """Reference statistics: bundled in reference_stats/, built ones in the user cache."""


@ref.command("list")
@json_option("the entries")
@click.option("--catalog", "--catalogue", "catalog", is_flag=True,
              help="List the catalogue of published references (clean-fid, TTUR, ADM, EDM, EDM2) instead of the store.")
@click.option("--source", default=None, help="With --catalog: only this source (clean-fid, ttur, adm, edm, edm2).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file.")
def ref_list(json_out: str | None, catalog: bool, source: str | None, overwrite: bool) -> None:
    """List the known reference statistics (with --catalog: the published ones genbench can fetch by id)."""
    from ..results.outputs import check_output_file
    from ..stats.reference import all_entries

    check_output_file(json_out, "--json", overwrite)
    if source is not None and not catalog:
        raise ConfigError("--source applies to --catalog only")
    if catalog:
        _list_catalogue(json_out, source)
        return
    entries = all_entries()
    if json_out:
        emit_json(json.dumps([{**e.to_dict(), "path": str(e.path)} for e in entries], indent=2), json_out)
        if json_out == "-":
            return
    if not entries:
        click.echo("(no reference statistics)")
    for e in entries:
        state = "ok" if e.path.is_file() else "missing file"
        click.echo(f"{e.id:<48} {e.dataset}:{e.split:<6} n={e.n:<6} {e.extractor}/{e.layer} {e.preprocessing}  [{state}]")


def _list_catalogue(json_out: str | None, source: str | None) -> None:
    from ..stats.catalogue import load_catalogue
    from ..stats.reference import all_entries

    entries = load_catalogue().entries
    sources = sorted({e.source for e in entries})
    if source is not None:
        if source not in sources:
            raise ConfigError(f"--source {source!r}: expected one of {', '.join(sources)}")
        entries = tuple(e for e in entries if e.source == source)
    fetched = {e.id for e in all_entries()}
    if json_out:
        emit_json(json.dumps([{**e.to_dict(), "fetched": e.store_id(e.components[0]) in fetched} for e in entries],
                             indent=2), json_out)
        if json_out == "-":
            return
    for e in entries:
        res = f"{e.resolution}px" if e.resolution else "?px"
        n = f"n={e.n}" if e.n else "n=" + ("file" if "file" in e.n_basis or "rows" in e.n_basis else "?")
        parts = " + ".join(f"{c.name}:{c.extractor}/{c.layer}/{c.preprocessing}" for c in e.components)
        state = "fetched" if e.store_id(e.components[0]) in fetched else "-"
        click.echo(f"{e.id:<52} {e.dataset}:{e.split:<11} {res:<7} {n:<10} {parts}  [{state}]")


@ref.command("show")
@click.argument("ref_id")
@click.option("--json", "as_json", is_flag=True, help="A catalogue id: print the entry as JSON.")
def ref_show(ref_id: str, as_json: bool) -> None:
    """Show one entry of the manifest, or of the catalogue of published references (its extractor, policy, n,
    URL and sha256)."""
    from ..stats.catalogue import load_catalogue
    from ..stats.reference import get_reference

    cat = load_catalogue().find(ref_id)
    if cat is not None:
        _show_catalogue_entry(cat, as_json)
        return
    e = get_reference(ref_id)
    click.echo(json.dumps({**e.to_dict(), "path": str(e.path)}, indent=2))


def _show_catalogue_entry(e, as_json: bool) -> None:
    from ..stats.fetch import downloads_path, expected_sha256
    from ..stats.reference import all_entries

    sha, basis = expected_sha256(e)
    stored = {x.id: x for x in all_entries()}
    if as_json:
        doc = {**e.to_dict(), "sha256_expected": sha, "sha256_expected_basis": basis,
               "store": {e.store_id(c): str(stored[e.store_id(c)].path) for c in e.components
                         if e.store_id(c) in stored}}
        click.echo(json.dumps(doc, indent=2))
        return
    lines = [
        ("id", e.id), ("url", e.url), ("format", f"{e.format}"), ("dataset", f"{e.dataset}:{e.split}"),
        ("resolution", f"{e.resolution}x{e.resolution}" if e.resolution else "not stated"),
        ("n", f"{e.n} ({e.n_basis})" if e.n else e.n_basis),
        ("covariance", "/(N-1) (unbiased)" if e.covariance == "unbiased" else "/N (biased; converted at import)"),
        ("sha256", f"{sha} ({basis})" if sha else f"{basis}: recorded at the first download"),
    ]
    for c in e.components:
        store_id = e.store_id(c)
        where = str(stored[store_id].path) if store_id in stored else "not fetched"
        lines += [
            (f"[{c.name}] id", store_id),
            (f"[{c.name}] keys", ", ".join(c.keys) + f" ({c.kind})"),
            (f"[{c.name}] extractor", f"{c.extractor} layer {c.layer} ({c.feature_dim}-d)"),
            (f"[{c.name}] preprocessing", c.preprocessing),
            (f"[{c.name}] weights sha256", c.weights_sha256 or "none published"),
            (f"[{c.name}] packaging", c.packaging_line()),
            (f"[{c.name}] agreement", c.agreement),
            (f"[{c.name}] store", where),
        ]
        if store_id in stored and stored[store_id].n:
            lines.append((f"[{c.name}] n in store", str(stored[store_id].n)))
    if e.images:
        kept = downloads_path(e)
        lines.append(("images", f"{e.images['key']} ({e.images.get('n')} x {e.resolution}x{e.resolution} uint8): "
                                + (str(kept) if kept.is_file() else "kept in the store once fetched")))
    lines += [("made by", e.made_by), ("citation", e.citation)]
    lines += [("unconfirmed", u) for u in e.unconfirmed] + [("note", n) for n in e.notes]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        click.echo(f"{key + ':':<{width + 1}} {value}")


@ref.command("fetch")
@click.argument("ref_ids", nargs=-1, required=True)
@click.option("--from", "from_file", type=click.Path(dir_okay=False), default=None,
              help="Import a copy of the file made by hand (an offline machine) instead of downloading it; one ID.")
@click.option("--overwrite", is_flag=True, help="Download and import again even when the store has the entry.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds to connect and for each read of a download.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or messages on stderr.")
def ref_fetch(ref_ids: tuple[str, ...], from_file: str | None, overwrite: bool, timeout: float, quiet: bool) -> None:
    """Download published references by id (see `genbench ref list --catalog`), check them and import them into
    the user store with the catalogue's provenance; one line per store entry on stdout.

    No sha256 is published for these files: the first copy's sha256 is printed and recorded, and every later
    copy is checked against it. GENBENCH_DOWNLOAD_MIRROR=BASE fetches https://HOST/PATH from BASE/HOST/PATH.
    """
    from ..stats.catalogue import load_catalogue
    from ..stats.fetch import fetch_reference

    catalogue = load_catalogue()
    entries = [catalogue.get(r) for r in ref_ids]  # every id checked before any download
    if from_file is not None and len(entries) != 1:
        raise ConfigError(f"--from {from_file}: give exactly one ID to import it as, got {len(entries)}")
    for cat in entries:
        result = fetch_reference(cat, from_file=from_file, overwrite=overwrite, progress=not quiet,
                                 say=None if quiet else lambda text: click.echo(text, err=True), timeout=timeout)
        for e in result.entries:
            click.echo(f"{e.id:<52} {e.kind:<10} n={e.n or '?':<9} {e.extractor}/{e.layer}/{e.preprocessing}  "
                       f"[{result.check}]")


@ref.command("verify")
@click.argument("ref_ids", nargs=-1)
@click.option("--rebuild", is_flag=True, help="Also recompute the statistics from the data and compare.")
@config_options(ExtractOptions, "data_dir", "weights", "batch_size", "device", "progress",
                help={"progress": "No progress bars on stderr (the verdict lines still print)."})
def ref_verify(ref_ids: tuple[str, ...], rebuild: bool, data_dir: str | None, weights: str | None,
               batch_size: int | None, device: str, quiet: bool) -> None:
    """Check sha256 of REF_IDS (all when none given); with --rebuild, recompute and compare.

    One verdict line per reference on stdout (ok / FAIL); exit 2 when any fails.
    """
    from ..api import compute_stats
    from ..metrics.fid import frechet_distance_from_stats
    from ..stats.reference import all_entries, get_reference

    entries = [get_reference(r) for r in ref_ids] if ref_ids else all_entries()
    failed = []
    for e in entries:
        try:
            if e.kind == "features":  # a KID reference: its sha256 is all there is to verify
                e.verify()
                click.echo(f"ok   {e.id}: sha256 matches")
                continue
            saved = e.load()
        except ReferenceStatsError as exc:
            click.echo(f"FAIL {e.id}: {exc}")
            failed.append(e.id)
            continue
        line = f"ok   {e.id}: sha256 matches"
        if rebuild:
            stats, meta = compute_stats(f"{e.dataset}:{e.split}", extractor=e.extractor, weights=weights,
                                        preprocessing=e.preprocessing, batch_size=batch_size, device=device,
                                        data_dir=data_dir, progress=not quiet)
            if meta["weights_sha256"] != e.weights_sha256:
                raise ReferenceStatsError(f"{e.id}: rebuilt with weights {meta['weights_sha256']}, manifest says {e.weights_sha256}")
            fd = frechet_distance_from_stats(stats, saved.stats)
            mu_err = float(np.abs(stats.mean() - saved.stats.mean()).max())
            same = stats.n == saved.stats.n and fd < 1e-6 and mu_err < 1e-6
            line = f"{'ok  ' if same else 'FAIL'} {e.id}: rebuilt n={stats.n} (manifest {e.n}), FD to saved {fd:.3g}, max |dmu| {mu_err:.3g}"
            if not same:
                failed.append(e.id)
        click.echo(line)
    if failed:
        raise ReferenceStatsError(f"verification failed for: {', '.join(failed)}")


@ref.command("build")
@click.argument("spec")
@config_options(ExtractOptions, "extractor", "weights", "weights_sha256", "preprocessing", "data_dir", "batch_size",
                "device", "workers",
                help={"extractor": "Extractor to build the statistics with (default: the data set's, fmnist-cnn for "
                                   "Fashion-MNIST and Stacked Fashion-MNIST, else inception-v3)."})
@click.option("--bundled", is_flag=True, help="Write into the bundled store (a checkout's reference_stats/; maintainers) instead of the user cache.")
@click.option("--overwrite", is_flag=True, help="Replace an existing entry with the same id.")
@config_option(ExtractOptions, "progress")
@prep_options
def ref_build(spec: str, extractor: str | None, weights: str | None, weights_sha256: str | None,
              preprocessing: str | None, data_dir: str | None, batch_size: int | None, device: str, workers: int,
              bundled: bool, overwrite: bool, quiet: bool, prep: str | None = None, resolution: int | None = None) -> None:
    """Build statistics for a data set SPEC (e.g. fashion-mnist:train) and add them to a manifest."""
    from ..api import compute_stats
    from ..stats.io import save_stats
    from ..stats.reference import (
        ManifestEntry,
        bundled_dir,
        read_manifest,
        sha256_file,
        stats_file_name,
        user_dir,
        write_manifest,
    )
    from ..version import __version__

    if ":" not in spec:
        raise ConfigError(f"SPEC {spec!r}: expected a data set and split such as fashion-mnist:train")
    dataset, split = spec.split(":", 1)
    from ..evaluate import choose_extractor

    extractor, _ = choose_extractor(ExtractOptions(extractor=extractor, device=device), [], [spec])  # the one rule
    from ..features import canonical_preprocessing

    policy = None
    if preprocessing:
        try:
            policy = canonical_preprocessing(extractor, preprocessing)  # an alias is recorded by its canonical name
        except ConfigError:
            policy = preprocessing  # a plug-in's own policy: the extractor checks it when it is built
    folder = bundled_dir() if bundled else user_dir()
    # An explicit policy is part of the id: statistics of one extractor under two policies never share an id.
    given, recorded = prepared_input(spec, prep, resolution, data_dir)  # --prep: part of the id and the metadata
    entry_id = (f"{dataset}-{split}_{extractor}" + (f"_{policy}" if policy else "")
                + (f"_{recorded['prep']}-{recorded['resolution']}" if recorded else ""))
    if any(e.id == entry_id for e in read_manifest(folder)) and not overwrite:  # before any extraction
        raise ConfigError(f"reference {entry_id} already exists in {folder}; pass --overwrite to rebuild it")
    stats, meta = compute_stats(given, extractor=extractor, weights=weights, preprocessing=preprocessing,
                                batch_size=batch_size, device=device, workers=workers, data_dir=data_dir, progress=not quiet,
                                weights_sha256=weights_sha256)
    name = stats_file_name(dataset, split, meta["extractor"], meta["layer"], meta["preprocessing"], stats.n)
    if recorded:  # two preparations of one split are two files
        name = name[:-len(".npz")] + f"_{recorded['prep']}-{recorded['resolution']}.npz"
    entries = read_manifest(folder)
    if any(e.id == entry_id for e in entries) and not overwrite:  # written by another process meanwhile
        raise ConfigError(f"reference {entry_id} already exists in {folder}; pass --overwrite to rebuild it")
    command = (f"genbench ref build {spec} --extractor {extractor}" + (f" --preprocessing {policy}" if policy else "")
               + (f" --prep {recorded['prep']} --resolution {recorded['resolution']}" if recorded else "")
               + (" --bundled" if bundled else "") + " --overwrite")
    save_stats(folder / name, stats, {**meta, **recorded, "dataset": dataset, "split": split, "command": command},
               overwrite=True)
    entry = ManifestEntry(
        id=entry_id, file=name, sha256=sha256_file(folder / name), dataset=dataset, split=split, n=stats.n,
        extractor=meta["extractor"], weights_sha256=meta["weights_sha256"], layer=meta["layer"],
        preprocessing=meta["preprocessing"], genbench_version=__version__, command=command, store=str(folder),
    )
    write_manifest(folder, [e for e in entries if e.id != entry_id] + [entry])
    if not quiet:
        click.echo(f"built {entry_id}: {folder / name} (n={stats.n})", err=True)


@ref.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--id", "ref_id", required=True, help="Id for the new entry.")
@click.option("--dataset", required=True)
@click.option("--split", required=True)
@click.option("--extractor", required=True, help="Extractor the statistics were made with, as genbench names it.")
@click.option("--weights-sha256", required=True, help="sha256 of the weights used (as the user states it).")
@click.option("--layer", required=True)
@click.option("--preprocessing", required=True)
@click.option("--n", "n", type=click.IntRange(min=2), default=None, help="Sample count, if the file does not say.")
@click.option("--format", "fmt", type=click.Choice(["auto", "npz", "edm2", "adm"]), default="auto", show_default=True,
              help="npz: a mu/sigma .npz (pytorch-fid, TTUR, clean-fid); edm2: an EDM2 statistics .pkl (read with a "
                   "restricted unpickler); adm: an ADM reference batch .npz (mu/sigma only).")
@click.option("--key", default=None, help="EDM2 .pkl: which statistics (fid or fd_dinov2; default from --extractor).")
@click.option("--note", default="", help="Where the statistics came from.")
@click.option("--covariance", type=click.Choice(["unbiased", "biased"]), default="unbiased", show_default=True,
              help="How the file's sigma is normalised: unbiased (/(N-1)) or biased (/N: StyleGAN); biased is "
                   "converted exactly with N, and that is recorded.")
@click.option("--protocol", default=None, help="The paper protocol the statistics were made under (recorded in their "
              "identity; genbench list protocols).")
@click.option("--overwrite", is_flag=True)
@click.option("--quiet", "-q", is_flag=True, help="No messages on stderr.")
def ref_import(file: str, ref_id: str, dataset: str, split: str, extractor: str, weights_sha256: str, layer: str,
               preprocessing: str, n: int | None, fmt: str, key: str | None, note: str, overwrite: bool,
               quiet: bool, covariance: str = "unbiased", protocol: str | None = None) -> None:
    """Import mu/sigma from another tool (.npz, EDM2 .pkl, ADM .npz), recording the provenance the user states."""
    import warnings

    from ..features import canonical_preprocessing
    from ..stats.feature_stats import FeatureStats
    from ..stats.foreign import detect_format, read_adm_npz, read_edm2_pickle
    from ..stats.io import UnknownProvenanceWarning, checked_gaussian, load_stats, save_stats
    from ..stats.reference import (
        ManifestEntry,
        check_reference_id,
        read_manifest,
        sha256_file,
        user_dir,
        write_manifest,
    )
    from ..version import __version__

    check_reference_id(ref_id)
    # clean-fid's names (clean, ...) and the short DINOv2/CLIP names are recorded as the extractor's canonical ones
    preprocessing = canonical_preprocessing(extractor, preprocessing)
    fmt = detect_format(file) if fmt == "auto" else fmt
    if key is not None and fmt != "edm2":
        raise ConfigError(f"--key applies to EDM2 .pkl files only; {file} is read as {fmt}")
    if fmt == "npz":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownProvenanceWarning)
            saved = load_stats(file)
        file_n = (saved.meta or {}).get("n") or (saved.stats.n if saved.stats.n > 2 else None)
        mu, sigma = saved.stats.mean(), saved.stats.cov()
    else:
        if fmt == "edm2":
            key = key or ("fd_dinov2" if extractor.startswith("dinov2-") else "fid")
            mu, sigma, file_n = read_edm2_pickle(file, key)
        else:
            mu, sigma, file_n = read_adm_npz(file)
        mu, sigma = checked_gaussian(mu, sigma, file)
    count = n or file_n or 0
    if count < 2:
        raise ConfigError(f"{file}: the file does not record its sample count; pass --n")
    folder = user_dir()
    entries = read_manifest(folder)
    if any(e.id == ref_id for e in entries) and not overwrite:
        raise ConfigError(f"reference {ref_id} already exists in {folder}; pass --overwrite to replace it")
    if protocol is not None:
        from ..protocols import get_protocol

        get_protocol(protocol)  # ConfigError listing the protocols
    converted = {}
    if covariance == "biased":  # sigma = sums / N - mu mu^T: the same sums as sigma * N / (N - 1) under /(N-1)
        sigma = sigma * (count / (count - 1))
        converted = {"covariance_import": f"biased (/N) as imported; multiplied by N/(N-1) with N={count}"}
    stats = FeatureStats.from_mean_cov(mu, sigma, count)
    meta = {"extractor": extractor, "layer": layer, "preprocessing": preprocessing, "weights_sha256": weights_sha256,
            "feature_dim": stats.dim, "provenance": "declared by the user at import", "note": note,
            "imported_from": str(Path(file).resolve()), "imported_format": fmt + (f":{key}" if key else ""),
            **converted, **({"protocol": protocol} if protocol else {})}
    # The file is named by its content, never by the user's id: an id can never reach outside the store.
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode() + stats.mean().tobytes() + stats.cov().tobytes())
    name = f"imported-{digest.hexdigest()[:20]}.npz"
    save_stats(folder / name, stats, meta, overwrite=True)
    entry = ManifestEntry(id=ref_id, file=name, sha256=sha256_file(folder / name), dataset=dataset, split=split, n=count,
                          extractor=extractor, weights_sha256=weights_sha256, layer=layer, preprocessing=preprocessing,
                          genbench_version=__version__, command=f"genbench ref import {file} --id {ref_id} ...",
                          store=str(folder))
    kept = [e for e in entries if e.id != ref_id] + [entry]
    write_manifest(folder, kept)
    for replaced in (e for e in entries if e.id == ref_id):  # the file of a replaced import, if nothing else uses it
        if replaced.file not in {e.file for e in kept}:
            (folder / replaced.file).unlink(missing_ok=True)
    if not quiet:
        click.echo(f"imported {ref_id} into {folder}", err=True)

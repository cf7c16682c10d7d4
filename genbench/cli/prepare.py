"""``genbench prepare``: a data set through a paper's preparation (``--prep NAME --resolution R``), written as uint8
images; and the ``--prep``/``--resolution`` options that ``stats`` and ``ref build`` share."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..errors import ConfigError


def prep_options(fn: Callable) -> Callable:
    """``--prep NAME`` and ``--resolution R`` (genbench.sources.prep)."""
    fn = click.option("--resolution", type=click.IntRange(min=1), default=None,
                      help="Side R of the square images --prep makes.")(fn)
    return click.option("--prep", default=None,
                        help="Dataset preparation of a published protocol: adm-center-crop, edm-center-crop, "
                             "edm-lanczos, edm2-center-crop-dhariwal (with --resolution).")(fn)


def prepared_input(spec: str, prep: str | None, resolution: int | None, data_dir: str | None,
                   protocol: str | None = None) -> tuple[Any, dict]:
    """(the input, what to record): ``spec`` as it is without --prep; else its images through the preparation,
    checked against the protocol's own dataset preparation (ConfigError naming both when they differ)."""
    from ..sources.prep import PreparedSource, check_prep

    checked = check_prep(prep, resolution)
    if protocol is not None and checked is not None:
        from ..protocols import get_protocol

        fixed = get_protocol(protocol).dataset_prep
        if fixed is not None and checked[0].name != fixed:
            raise ConfigError(f"--prep {checked[0].name} contradicts --protocol {protocol}, whose reference images "
                              f"are prepared with {fixed}")
    if checked is None:
        return spec, {}
    from ..sources.resolve import as_source

    source = PreparedSource(as_source(spec, data_dir=data_dir), checked[0].name, checked[1])
    return source, source.provenance()


@click.command()
@click.argument("source")
@prep_options
@click.option("-o", "--output", required=True, help="Where to write the prepared images: OUT.zip (PNGs) or OUT.npz "
              "(arr_0, uint8 NHWC).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, envvar="GENBENCH_DATA",
              help="Where data sets such as cifar10 are found.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", "-q", is_flag=True, help="No messages on stderr.")
def prepare(source: str, prep: str | None, resolution: int | None, output: str, data_dir: str | None,
            overwrite: bool, quiet: bool) -> None:
    """Write SOURCE's images through a paper's dataset preparation (--prep NAME --resolution R)."""
    from ..results.outputs import check_output_file
    from ..sources.prep import write_prepared

    if prep is None or resolution is None:
        raise ConfigError("prepare needs --prep NAME and --resolution R")
    check_output_file(output, "-o", overwrite)
    if not output.lower().endswith((".zip", ".npz")):
        raise ConfigError(f"-o {output}: expected a .zip (PNG images) or .npz (arr_0) output")
    src, recorded = prepared_input(source, prep, resolution, data_dir)
    n = write_prepared(src, output, overwrite=overwrite)
    if not quiet:
        click.echo(f"wrote {output}: {n} images of {resolution}x{resolution} ({recorded['prep']})", err=True)

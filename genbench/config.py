"""Defaults, in one place, as frozen dataclasses; ``to_dict()`` feeds provenance.

Each field of :class:`ExtractOptions` and :class:`MetricOptions` carries its CLI flag and help text in
``dataclasses.field(metadata=...)`` (see :func:`option`): :mod:`genbench.cli.options` generates the click
options from them and :mod:`genbench.api` its keyword options, so a default lives here and only here.
"""
from __future__ import annotations

import numbers
import os
from dataclasses import Field, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_EXTRACTOR = "inception-v3"
DEFAULT_SEED = 0
MAX_SEED = 2**32 - 1  # numpy's and torch's seeded generators accept 0 .. 2**32 - 1

#: --batch-size when none is given, per (extractor, device type), where bench/bench_batch_size.py measured a
#: better one than DEFAULT_BATCH_SIZE (reports/bench.md, "Default batch size"): on the CPU fmnist-cnn's 28x28
#: forward is so cheap that per-batch overhead dominates at 64 (256: about 2x the images/s), and Inception-v3
#: is no slower at 32 than at 64 (faster in the quieter runs) with a third less peak memory. CUDA is not
#: measured yet: 64.
BATCH_SIZES: dict[tuple[str, str], int] = {("fmnist-cnn", "cpu"): 256, ("inception-v3", "cpu"): 32}
DEFAULT_BATCH_SIZE = 64
PRECISIONS = ("float32", "tf32", "bf16")  # --precision; see genbench.extraction.engine


def default_batch_size(extractor: str | None, device: str) -> int:
    """BATCH_SIZES[(extractor, device type)], else DEFAULT_BATCH_SIZE (also while the extractor is not known
    yet, None: it may come from the reference; ExtractOptions.for_extractor() settles it then)."""
    if extractor is None:
        return DEFAULT_BATCH_SIZE
    return BATCH_SIZES.get((extractor, str(device).split(":")[0]), DEFAULT_BATCH_SIZE)


def _batch_help() -> str:
    rule = "; ".join(f"{b} for {name} on {dev}" for (name, dev), b in sorted(BATCH_SIZES.items()))
    return (f"Images per network batch. Default: by --extractor and device type: {rule}; "
            f"{DEFAULT_BATCH_SIZE} otherwise (measured: reports/bench.md).")


def option(default: Any, flag: str, help: str = "", **meta: Any) -> Any:
    """A dataclass field with its CLI option in the metadata: ``flag`` (e.g. ``--batch-size``) and ``help``, and where
    they apply:

    - ``aliases``: more flags for the same option (``--resize``, ``-q``);
    - ``param``: click's parameter name when it is not the field's (``pr_k`` for ``--pr-k``); the Python API
      accepts it as a short alias;
    - ``invert``: a flag that turns a True default off (``--quiet`` -> ``progress=False``, ``--no-cache``);
    - ``min`` / ``max``: integer bounds, checked here (ConfigError) and by click (``IntRange``);
    - ``choices``: the accepted strings; ``path``: ``"file"`` or ``"dir"`` (click.Path); ``envvar``: the
      environment variable the CLI also reads;
    - ``doc``: the API docstring's text, where the CLI's help reads the other way round (inverted flags);
    - ``after``: in ``--help``, list the option right after this field's (fields keep their positional order).
    """
    return field(default=default, metadata={"flag": flag, "help": help, **meta})


def option_fields(cls: type) -> tuple[Field, ...]:
    """The fields of ``cls`` that are options (every field with a ``flag`` in its metadata), in the order of
    ``--help``: the fields' order, each one with an ``after`` moved behind that field."""
    ordered: list[Field] = []
    for f in fields(cls):
        if "flag" not in f.metadata:
            continue
        after = f.metadata.get("after")
        names = [g.name for g in ordered]
        ordered.insert(names.index(after) + 1 if after in names else len(ordered), f)
    return tuple(ordered)


def param_name(f: Field) -> str:
    """click's parameter name of the option of field ``f`` (``pr_k`` for prdc_k_precision_recall)."""
    return f.metadata.get("param", f.name)


def cache_dir() -> Path:
    """Root of genbench's caches: $GENBENCH_CACHE, else ~/.cache/genbench."""
    env = os.environ.get("GENBENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "genbench"


@dataclass(frozen=True)
class ExtractOptions:
    """How features are extracted: which network, on what, how fast."""

    extractor: str | None = option(None, "--extractor", "Feature extractor. Default: what a loaded input records (a feature or statistics "
                                       "file, a reference id); else the data set's (fmnist-cnn for fashion-mnist and "
                                       "stacked-fashion-mnist); else inception-v3.")
    weights: str | None = option(None, "--weights", "Local weights file for the extractor (Inception: also "
                                 "$GENBENCH_INCEPTION_WEIGHTS).", path="file")
    preprocessing: str | None = option(  # None: follow the reference, else the extractor's default
        None, "--preprocessing", "Preprocessing policy, e.g. tf1-bilinear, torch-bilinear, pil-bicubic (default: the "
        "extractor's).", aliases=("--resize",))
    layer: str | None = option(  # None: the extractor's default layer (inception-v3: pool3)
        None, "--layer", "Which layer's features: inception-v3 has pool3 (default) and spatial (ADM's sFID features, "
        "17x17x7 of mixed_6/conv).", after="preprocessing")
    protocol: str | None = option(  # genbench.protocols: fixes extractor, preprocessing, layer and metric options
        None, "--protocol", "A published paper protocol by name (adm, edm2, clean-fid, ttur, stylegan): fixes the "
        "extractor, preprocessing, metrics and their options; a contradicting option is refused.", after="layer")
    batch_size: int | None = option(None, "--batch-size", _batch_help(), min=1)  # None: see for_extractor()
    device: str = option("cpu", "--device", "cpu, cuda, cuda:1, ...")  # checked by the CLI when parsed, and here
    workers: int = option(0, "--workers", "Parallel decoding workers.", min=0)
    data_dir: str | None = option(None, "--data-dir", "Where data sets such as fashion-mnist are found.", path="dir",
                                  envvar="GENBENCH_DATA")
    progress: bool = option(True, "--quiet", "No progress bars or messages on stderr (results still print).",
                            aliases=("-q",), param="quiet", invert=True, doc="Progress bars and messages on stderr.")
    cache: bool = option(  # genbench.extraction.cache; --no-cache turns it off for one run
        True, "--no-cache", "Neither read nor write the feature cache for this run.", param="no_cache", invert=True,
        doc="Read and write the feature cache (genbench.extraction.cache).")
    precision: str = option(  # see genbench.extraction.engine
        "float32", "--precision", "Extractor arithmetic; tf32 (CUDA) and bf16 are faster, and score also prints their "
        "deviation from float32 on a subset.", choices=PRECISIONS)
    allow_unverified_weights: bool = option(
        False, "--allow-unverified-weights", "Accept a --weights file whose sha256 is not the published one (its own "
        "sha256 is recorded).", after="weights")
    weights_sha256: str | None = option(
        None, "--weights-sha256", "Required sha256 of weights that have no published one (DINOv2; also "
        "$GENBENCH_DINOV2_WEIGHTS_SHA256).", after="allow_unverified_weights")

    # A py:MODULE:FUNCTION / py:FILE.py:FUNCTION generator (or a callable, in the API) as an input: genbench.sources.generator
    num_samples: int | None = option(None, "--num-samples", "Images to draw from a py:MODULE:FUNCTION generator input "
                                     "(required for one).", min=1)
    generator_seed: int | None = option(None, "--generator-seed", "Seed of a py: generator's draws (default: --seed "
                                        "where the verb has one, else 0).", min=0, max=MAX_SEED)
    generator_batch_size: int = option(256, "--generator-batch-size", "Images per call of a streamed py: generator "
                                       "fn(n, seed, start) (part of its cache key).", min=1)
    value_range: str | None = option(None, "--value-range", "LO,HI: the range of a py: generator's float output "
                                     "(default 0,1; e.g. -1,1 for tanh); uint8 output is taken as is.")

    def __post_init__(self) -> None:
        from .util.devices import check_device

        object.__setattr__(self, "device", check_device(self.device, "device (--device)"))
        if self.batch_size is None:
            object.__setattr__(self, "batch_size", default_batch_size(self.extractor, self.device))
            object.__setattr__(self, "_default_batch", True)  # not a field: dataclasses.replace() drops it
            object.__setattr__(self, "_batch_for", self.extractor)
        _check_bounds(self)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision (--precision) {self.precision!r}: expected float32, tf32 or bf16")

    def for_extractor(self, name: str) -> ExtractOptions:
        """These options once the extractor is chosen (e.g. from the reference's metadata): a batch size that
        was not given becomes ``name``'s default on this device (and stays "not given": a later call with another
        name settles it again)."""
        if not getattr(self, "_default_batch", False) or name in (self.extractor, getattr(self, "_batch_for", None)):
            return self
        chosen = replace(self, batch_size=default_batch_size(name, self.device))
        object.__setattr__(chosen, "_default_batch", True)
        object.__setattr__(chosen, "_batch_for", name)
        return chosen

    def to_dict(self) -> dict:
        return asdict(self)

    def replaced(self, **changes: Any) -> ExtractOptions:
        """``dataclasses.replace`` that keeps a batch size that was not given "not given" (see for_extractor)."""
        chosen = replace(self, **changes)
        if getattr(self, "_default_batch", False) and "batch_size" not in changes:
            object.__setattr__(chosen, "_default_batch", True)
            object.__setattr__(chosen, "_batch_for", getattr(self, "_batch_for", None))
        return chosen


COVARIANCES = ("unbiased", "biased")  # --covariance: divide by N - 1 (TTUR, ADM, EDM ...) or by N (StyleGAN)


@dataclass(frozen=True)
class MetricOptions:
    """Options of the metrics themselves (they change the numbers, so they are recorded)."""

    seed: int = option(DEFAULT_SEED, "--seed", "Seed for every random step.", min=0, max=MAX_SEED)
    is_splits: int = option(10, "--is-splits", "Splits of the generated set for the Inception Score (its mean and std).",
                            min=1)
    is_split_size: int | None = option(
        None, "--is-split-size", "Images per Inception Score split, contiguous and unshuffled, the last split shorter "
        "(ADM's rule: 5000); replaces --is-splits.", min=1, after="is_splits")
    kid_subsets: int = option(100, "--kid-subsets", "Random subsets KID averages over.", min=1)
    kid_subset_size: int = option(1000, "--kid-subset-size", "Samples in each KID subset (at most the smaller sample count).",
                                  min=2)
    bootstrap: int = option(0, "--bootstrap", "Bootstrap replicates for 95% intervals of FD and KID (0 = off).", min=0)
    prdc_k_precision_recall: int = option(3, "--pr-k", "k of the k-NN manifolds for precision and recall.", min=1,
                                          param="pr_k")
    prdc_k_density_coverage: int = option(5, "--dc-k", "k of the k-NN balls for density and coverage.", min=1,
                                          param="dc_k")
    covariance: str = option("unbiased", "--covariance", "Covariance of Frechet distances: unbiased (divide by N-1: "
                             "TTUR, ADM, clean-fid, EDM) or biased (by N: StyleGAN).", choices=COVARIANCES)
    vendi_q: str = option("1", "--vendi-q", "Order q of the Vendi score: a positive number or inf (1 = the paper's "
                          "Shannon entropy).")
    mifid_eps: float = option(0.1, "--mifid-eps", "MiFID's cosine-distance threshold: below it the FD is divided by "
                              "the mean minimum cosine distance to the training set.")
    top_pr_alpha: float = option(0.1, "--top-pr-alpha", "Significance level of TopP&R's bootstrap confidence band.")
    realism_k: int = option(3, "--realism-k", "k of the reference k-NN balls of the realism score.", min=1)
    rarity_k: int = option(3, "--rarity-k", "k of the reference k-NN balls of the rarity score.", min=1)
    fd_check: bool = option(False, "--fd-check", "Also compute FD by scipy's sqrtm route and report its agreement "
                            "and imaginary part (in the FD's diagnostics).")

    def __post_init__(self) -> None:
        _check_bounds(self)
        if self.covariance not in COVARIANCES:
            raise ConfigError(f"covariance (--covariance) {self.covariance!r}: expected unbiased or biased")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DemoOptions:
    """``genbench demo``: the offline main job (real images and degraded copies against bundled statistics)."""

    reference: str = option("fashion-mnist:train", "--ref", "Reference statistics id.", param="reference")
    samples: str = option("fashion-mnist:test", "--samples", "Real images to score and degrade.")
    batch_size: int = 500  # not an option of the verb: the network batch of its extractions


@dataclass(frozen=True)
class BoardOptions:
    """``genbench leaderboard`` (and :func:`genbench.leaderboard.score_rows`): how a board's rows are scored."""

    n: int = option(10_000, "-n", "Samples per row.", min=10, param="n")
    out_dir: str = option("reports/fashion-mnist", "--out", "Folder the tables and pictures are written to.",
                          path="dir", param="out_dir")
    batch_size: int = option(500, "--batch-size", "Images per network batch.", min=1)
    reference_n: int = option(10_000, "--reference-n", "Seeded training images whose features serve KID, "
                              "precision/recall/density/coverage.", min=10)
    bootstrap: int = option(200, "--bootstrap", "Bootstrap replicates for the seeded 95% intervals of FD and KID on "
                            "every row (0 = none).", min=0)
    inception: str = option("auto", "--inception", "Also FID and IS with Inception-v3: auto = when its weights are at "
                            "hand without a download.", choices=("auto", "on", "off"))


@dataclass(frozen=True)
class SampleOptions:
    """``genbench baselines sample`` (and the baselines' sampling functions)."""

    batch_size: int = option(256, "--batch-size", "Images per generator batch (the samples do not depend on it).",
                             min=1)


@dataclass(frozen=True)
class SpreadOptions:
    """``genbench baselines spread``: how much fd_fmnist moves with the sampling seed."""

    n: int = option(10_000, "-n", "Samples per score.", min=10, param="n")
    seeds: str = option("0,1,2", "--seeds", "Comma-separated sampling seeds.")


def _check_bounds(options: object) -> None:
    """ConfigError naming the keyword and the CLI flag unless each field with a ``min`` in its metadata is an integer
    >= it (and <= its ``max``, where there is one)."""
    for f in option_fields(type(options)):
        low, high = f.metadata.get("min"), f.metadata.get("max")
        if low is None:
            continue
        value = getattr(options, f.name)
        if f.default is None and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ConfigError(f"{f.name} ({f.metadata['flag']}) must be an integer >= {low}, got {value!r}")
        if high is not None and value > high:
            raise ConfigError(f"{f.name} ({f.metadata['flag']}) must be at most {high}, got {value}")


# ----------------------------------------------------------------------------- keywords of the Python API

#: The one default the Python API (genbench.score, extract, Evaluator) sets apart from the fields above: quiet
#: (the CLI shows progress; -q turns it off).
API_DEFAULTS: dict[str, Any] = {"progress": False}


def _aliases(cls: type) -> dict[str, str]:
    """Short keyword -> field name: the CLI's parameter name where it is not the field's (``pr_k``, ``dc_k``)."""
    return {param_name(f): f.name for f in option_fields(cls) if param_name(f) != f.name and not f.metadata.get("invert")}


def split_options(options: dict[str, Any], *classes: type, call: str) -> list[dict[str, Any]]:
    """``options`` (keywords of ``call``) -> one dict of field values per class in ``classes``; an unknown keyword, or
    a field given twice (by its name and its alias), is a ConfigError naming it."""
    from .registry import did_you_mean

    owner = {f.name: cls for cls in classes for f in option_fields(cls)}
    aliases = {alias: name for cls in classes for alias, name in _aliases(cls).items()}
    chosen: dict[type, dict[str, Any]] = {cls: {} for cls in classes}
    given_as: dict[str, str] = {}
    for key, value in options.items():
        name = aliases.get(key, key)
        if name not in owner:
            valid = sorted([*owner, *aliases])
            raise ConfigError(f"{call}() got an unknown keyword {key!r}{did_you_mean(key, valid)}; "
                              f"valid keywords: {', '.join(valid)}")
        if name in given_as:
            raise ConfigError(f"{call}(): {given_as[name]!r} and {key!r} both set {name}; give one")
        given_as[name] = key
        chosen[owner[name]][name] = value
    return [chosen[cls] for cls in classes]


def keywords_doc(*classes: type) -> str:
    """The keyword list appended to the docstrings, from the dataclass fields (so it cannot drift from them); indented
    like the docstrings, so that ``help()`` shows one block."""
    import textwrap

    lines = ["", "", "Keyword options (defaults from genbench.config; the API alone defaults to progress=False):"]
    for cls in classes:
        lines += ["", f"{cls.__name__}:"]
        short = {name: alias for alias, name in _aliases(cls).items()}
        for f in option_fields(cls):
            default = API_DEFAULTS.get(f.name, f.default)
            also = f" (also ``{short[f.name]}``)" if f.name in short else ""
            flag = f.metadata["flag"] + (" turns it off" if f.metadata.get("invert") else "")
            text = (f.metadata.get("doc") or f.metadata["help"]) + f" CLI: {flag}."
            lines.append(f"    {f.name}: {f.type} = {default!r}{also}")
            lines += textwrap.wrap(text, 100, initial_indent=" " * 8, subsequent_indent=" " * 8,
                               break_on_hyphens=False)
    return "\n".join("    " + line if line else "" for line in lines) + "\n"

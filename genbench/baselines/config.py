"""Run configuration of a baseline: TOML in, frozen dataclasses out, every key checked.

A config file has three tables beside the top-level ``family`` and ``seed``::

    family = "dcgan"
    seed = 0
    [data]   # DataOptions: which data set, which split for the end-of-training evaluation
    [train]  # TrainOptions: steps, batch size, logging, precision
    [model]  # the family's own Options dataclass (networks, losses, optimiser settings)

Defaults live only in the dataclasses; ``resolve`` fills them in, so the resolved
config saved in a checkpoint lists every option. Unknown keys and wrong types raise
:class:`genbench.errors.ConfigError` naming the key and the file.
"""
from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from genbench.errors import ConfigError

from .data import dataset_channels
from .data_dir import CONFIG_DIR

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


@dataclass(frozen=True)
class DataOptions:
    """Training data and the split used for the end-of-training evaluation ("" = none)."""

    dataset: str = "fashion-mnist:train"
    eval_dataset: str = "fashion-mnist:test"
    eval_n: int = 10000  # images of eval_dataset used by the evaluation (0 = all)


@dataclass(frozen=True)
class TrainOptions:
    """The shared training loop's options."""

    steps: int = 2000
    batch_size: int = 64
    log_every: int = 100
    checkpoint_every: int = 0  # 0: only at the end
    dry_run_steps: int = 3
    dry_run_batch_size: int = 16
    amp: str = "auto"  # auto: bfloat16 autocast on CUDA when the family allows it; "off"; "bf16"
    time_limit_s: float = 0.0  # stop early after this much wall time (0 = no limit)
    stop_after: int = 0  # stop after this many steps, schedules unchanged (0 = run all ``steps``; repeats a timed-out run)
    # Exponential moving average of the family's ``ema_net`` (the generator), sampled from instead of the
    # raw weights (Karras et al. 2018; Yazici et al. 2019): 0 = off, else the decay per step, e.g. 0.999.
    ema_decay: float = 0.0
    ema_start: int = 0  # steps before averaging starts (the EMA copies the raw weights until then)
    # Learning rate of every optimiser: "constant", or "linear": constant until lr_decay_start (a fraction
    # of ``steps``), then linearly to 0 at ``steps`` (the WGAN-GP and CycleGAN reference schedules).
    lr_schedule: str = "constant"
    lr_decay_start: float = 0.5


AMP_MODES = ("auto", "off", "bf16")
LR_SCHEDULES = ("constant", "linear")


@dataclass(frozen=True)
class RunConfig:
    """A fully resolved run: family, seed, data, loop and model options."""

    family: str
    seed: int
    data: DataOptions
    train: TrainOptions
    model: Any  # the family's Options dataclass instance
    source: str = "<defaults>"  # where the config came from (file path or "<mapping>")

    def to_dict(self) -> dict:
        """Plain dict (str/int/float/bool only) for checkpoints and manifests."""
        return {
            "family": self.family,
            "seed": self.seed,
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
            "model": dataclasses.asdict(self.model),
        }

    def replace_train(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, train=dataclasses.replace(self.train, **changes))

    def replace_data(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, data=dataclasses.replace(self.data, **changes))


def options_from_mapping(cls: type[T], values: Mapping[str, Any], where: str, table: str) -> T:
    """Build dataclass ``cls`` from ``values``; refuse unknown keys and wrong types.

    ``where`` names the file (for messages), ``table`` the TOML table (e.g. "model").
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: [{table}] must be a table, got {type(values).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{table}.{unknown[0]}'"
            + (f" (and {', '.join(unknown[1:])})" if len(unknown) > 1 else "")
            + f"; expected one of: {', '.join(sorted(known))}"
        )
    defaults = cls()
    checked = {}
    for key, value in values.items():
        checked[key] = _check_type(value, getattr(defaults, key), f"{where}: {table}.{key}")
    return cls(**checked)


def _check_type(value: Any, default: Any, what: str) -> Any:
    """Coerce ``value`` to the type of ``default`` where lossless (int -> float), else raise."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, tuple):
        if isinstance(value, (list, tuple)):
            return tuple(value)
    else:  # pragma: no cover - Options fields are all plain types
        return value
    raise ConfigError(f"{what}: expected {type(default).__name__}, got {type(value).__name__} {value!r}")


def read_toml(path: str | Path) -> dict:
    """Parse a TOML file; ConfigError when it is missing or malformed."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist (--config)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def default_config_path(family: str) -> Path:
    return CONFIG_DIR / f"{family}.toml"


def resolve(raw: Mapping[str, Any], family: str, options_cls: type[DataclassInstance], where: str) -> RunConfig:
    """Turn a parsed TOML mapping into a RunConfig for ``family`` (whose Options are ``options_cls``)."""
    allowed = {"family", "seed", "data", "train", "model"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected one of: {', '.join(sorted(allowed))}")
    declared = raw.get("family", family)
    if declared != family:
        raise ConfigError(f"{where}: family = {declared!r}, but it was loaded to train {family!r}")
    seed = _check_type(raw.get("seed", 0), 0, f"{where}: seed")
    data = options_from_mapping(DataOptions, raw.get("data", {}), where, "data")
    train = options_from_mapping(TrainOptions, raw.get("train", {}), where, "train")
    model = options_from_mapping(options_cls, raw.get("model", {}), where, "model")
    if train.amp not in AMP_MODES:
        raise ConfigError(f"{where}: train.amp = {train.amp!r}; expected one of: {', '.join(AMP_MODES)}")
    for name in ("steps", "batch_size", "dry_run_steps", "dry_run_batch_size", "log_every"):
        if getattr(train, name) < 1:
            raise ConfigError(f"{where}: train.{name} must be >= 1, got {getattr(train, name)}")
    for name in ("checkpoint_every", "ema_start", "time_limit_s", "stop_after"):
        if getattr(train, name) < 0:
            raise ConfigError(f"{where}: train.{name} must be >= 0, got {getattr(train, name)}")
    if not 0.0 <= train.ema_decay < 1.0:
        raise ConfigError(f"{where}: train.ema_decay must be in [0, 1) (0 = no EMA), got {train.ema_decay}")
    if train.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"{where}: train.lr_schedule = {train.lr_schedule!r}; expected one of: {', '.join(LR_SCHEDULES)}")
    if not 0.0 <= train.lr_decay_start <= 1.0:
        raise ConfigError(f"{where}: train.lr_decay_start must be a fraction of train.steps in [0, 1], "
                          f"got {train.lr_decay_start}")
    check = getattr(model, "validate", None)
    if check is not None:
        check(where)
    check_channels(data, model, family, where)
    return RunConfig(family=family, seed=seed, data=data, train=train, model=model, source=where)


def check_channels(data: DataOptions, model: Any, family: str, where: str) -> None:
    """The data sets' image channels (from their registered shapes) must match the networks'.

    Families whose Options have a ``channels`` field build networks for that many channels; the
    others are gray-only (1 channel). ConfigError naming the options that disagree.
    """
    wanted = getattr(model, "channels", None)
    for option, spec in (("data.dataset", data.dataset), ("data.eval_dataset", data.eval_dataset)):
        if option == "data.eval_dataset" and not spec:
            continue
        got = dataset_channels(spec, f"{where}: {option}")
        if wanted is None and got != 1:
            raise ConfigError(
                f"{where}: {option} = {spec!r} holds {got}-channel images, but the {family} family is gray-only "
                "(its [model] has no 'channels' option; dcgan has one); pick a gray data set such as 'fashion-mnist:train'"
            )
        if wanted is not None and got != wanted:
            raise ConfigError(
                f"{where}: model.channels = {wanted} does not match {option} = {spec!r}, whose images have {got} "
                f"channel{'s' if got != 1 else ''}; set model.channels = {got} or pick a {wanted}-channel data set"
            )


def load_config(config: str | Path | Mapping[str, Any] | None, family: str,
                options_cls: type[DataclassInstance]) -> RunConfig:
    """Read ``config`` (a TOML path, a parsed mapping, or None for the bundled configs/FAMILY.toml)."""
    if config is None:
        config = default_config_path(family)
    if isinstance(config, Mapping):
        return resolve(config, family, options_cls, "<config mapping>")
    return resolve(read_toml(config), family, options_cls, str(config))

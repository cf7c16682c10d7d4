"""Options shared by the CLI verbs: generated from the fields of :class:`~genbench.config.ExtractOptions` and
:class:`~genbench.config.MetricOptions` (flag, help text, bounds and default all come from there), imported by
every verb module.

- :func:`extraction_options` adds every ExtractOptions option to a verb; :func:`metric_options` the named
  MetricOptions ones (a verb may give its own default or help text, e.g. ``genbench check``'s None: "follow the
  baseline"); :func:`seed_option` and :func:`device_option` add one each.
- :func:`build_extract_options` and :func:`build_metric_options` turn the parsed keyword arguments back into the
  dataclasses; :func:`option_values` gives the field values alone, :func:`given_flags` the values by flag.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field
from typing import Any

import click

from ..config import ExtractOptions, MetricOptions, option_fields, param_name


def _check_device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from ..util.devices import check_device

    return value if value is None else check_device(value, "--device")


#: field name -> the click callback checking its value when the command line is parsed (before any work)
_CALLBACKS: dict[str, Callable] = {"device": _check_device}


def _field(cls: type, name: str) -> Field:
    for f in option_fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no option {name!r}")


def _click_type(f: Field) -> click.ParamType | None:
    meta = f.metadata
    if "choices" in meta:
        return click.Choice(list(meta["choices"]))
    if meta.get("path") == "file":
        return click.Path(dir_okay=False)
    if meta.get("path") == "dir":
        return click.Path(file_okay=False)
    if "min" in meta:
        return click.IntRange(meta["min"], meta.get("max"))
    return None


def field_option(f: Field, default: Any = MISSING, help: str | None = None, **extra: Any) -> Callable:
    """The click option of dataclass field ``f``: its flag (and aliases), click type (bounds, choices, paths), help,
    envvar and callback from ``f.metadata``; the default is the field's (inverted for ``--quiet``/``--no-cache``)
    unless ``default`` is given."""
    meta = f.metadata
    decls = [meta["flag"], *meta.get("aliases", ()), param_name(f)]
    kwargs: dict[str, Any] = {"help": meta["help"] if help is None else help, **extra}
    if isinstance(f.default, bool):  # a flag: given -> True, so an inverted one (--quiet: progress=True) is False
        kwargs["is_flag"] = True
        kwargs["default"] = (not f.default if meta.get("invert") else f.default) if default is MISSING else default
    else:
        kwargs["default"] = f.default if default is MISSING else default
        kind = _click_type(f)
        if kind is not None:
            kwargs["type"] = kind
    if "envvar" in meta:
        kwargs["envvar"] = meta["envvar"]
    if f.name in _CALLBACKS:
        kwargs["callback"] = _CALLBACKS[f.name]
    return click.option(*decls, **kwargs)


def _stack(decorators: list[Callable]) -> Callable:
    def decorate(fn: Callable) -> Callable:
        for one in reversed(decorators):  # the first one listed is shown first in --help
            fn = one(fn)
        return fn

    return decorate


def config_option(cls: type, name: str, default: Any = MISSING, help: str | None = None, **extra: Any) -> Callable:
    """The click option of field ``name`` of the config dataclass ``cls`` (flag, type, help and default from the
    field; a verb may give its own ``default`` or ``help``)."""
    if cls is ExtractOptions and name == "device":
        return device_option(default, help)
    return field_option(_field(cls, name), default, help, **extra)


def config_options(cls: type, *names: str, defaults: Mapping[str, Any] | None = None,
                   help: Mapping[str, str] | None = None, **extra: Any) -> Callable:
    """The options of the fields ``names`` of ``cls`` (default: all of them), in that order; ``defaults`` and ``help``
    replace the dataclass's for this verb (by field name)."""
    defaults, help = defaults or {}, help or {}
    chosen = names or tuple(f.name for f in option_fields(cls))
    return _stack([config_option(cls, name, defaults.get(name, MISSING), help.get(name), **extra) for name in chosen])


def device_option(default: str | None | Any = MISSING, help: str | None = None) -> Callable:
    """``--device`` (ExtractOptions.device), checked against this machine when the command line is parsed."""
    return field_option(_field(ExtractOptions, "device"), default, help, show_default=True)


def seed_option(default: int | None | Any = MISSING, help: str | None = None) -> Callable:
    """``--seed`` (MetricOptions.seed): a non-negative integer below 2**32 (what every random generator here accepts)."""
    return field_option(_field(MetricOptions, "seed"), default, help)


def extraction_options(fn: Callable) -> Callable:
    """Every ExtractOptions option, for each verb that runs an extractor."""
    return _stack([device_option() if f.name == "device" else field_option(f) for f in option_fields(ExtractOptions)])(fn)


def metric_options(*names: str, defaults: Mapping[str, Any] | None = None, help: Mapping[str, str] | None = None,
                   **extra: Any) -> Callable:
    """The options of the MetricOptions fields ``names`` (default: all but ``seed``, which :func:`seed_option` adds),
    in that order; ``defaults`` and ``help`` replace the dataclass's for this verb (by field name)."""
    defaults, help = defaults or {}, help or {}
    chosen = names or tuple(f.name for f in option_fields(MetricOptions) if f.name != "seed")
    return _stack([field_option(_field(MetricOptions, name), defaults.get(name, MISSING), help.get(name), **extra)
                   for name in chosen])


def option_values(cls: type, kw: Mapping[str, Any]) -> dict[str, Any]:
    """Field name -> value, for every option of ``cls`` whose click parameter is in the parsed ``kw`` (``--quiet`` ->
    ``progress=False``). ``kw`` is left as it is (verbs read ``kw["quiet"]`` afterwards)."""
    values = {}
    for f in option_fields(cls):
        name = param_name(f)
        if name in kw:
            values[f.name] = (not kw[name]) if f.metadata.get("invert") else kw[name]
    return values


def given_flags(cls: type, kw: Mapping[str, Any]) -> dict[str, Any]:
    """CLI flag -> the parsed value, for every option of ``cls`` whose click parameter is in ``kw`` (as parsed: not
    inverted), e.g. to name the flags that were given where they do not apply."""
    return {f.metadata["flag"]: kw[param_name(f)] for f in option_fields(cls) if param_name(f) in kw}


def build_extract_options(kw: Mapping[str, Any], **overrides: Any) -> ExtractOptions:
    """ExtractOptions from a verb's parsed keyword arguments (those :func:`extraction_options` added)."""
    return ExtractOptions(**{**option_values(ExtractOptions, kw), **overrides})


def build_metric_options(kw: Mapping[str, Any], **overrides: Any) -> MetricOptions:
    """MetricOptions from a verb's parsed keyword arguments; options the verb does not have keep the dataclass's
    default, and ``overrides`` (by field name) win, e.g. a verb's clamp of ``kid_subset_size``."""
    return MetricOptions(**{**option_values(MetricOptions, kw), **overrides})


_extract_options = build_extract_options  # the old name, still imported by verb modules

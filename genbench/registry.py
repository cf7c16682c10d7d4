"""A small decorator registry, one instance per kind of plug-in."""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest candidates to a mistyped ``name``, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return ""
    quoted = [repr(c) for c in close]
    return " (did you mean " + (", ".join(quoted[:-1]) + " or " if len(quoted) > 1 else "") + quoted[-1] + "?)"


class Registry(Generic[T]):
    """Maps names (and aliases of them) to factories; an unknown name lists the valid ones.

    >>> EXTRACTORS = Registry("extractor", flag="--extractor")
    >>> @EXTRACTORS.register("my-net", aliases=("mynet",))
    ... def build_my_net(**options): ...

    An alias looks up the same entry as its name; :meth:`canonical` gives the name to record.

    :meth:`declare` names an entry that a module registers when imported (``declare("inception-v3",
    "genbench.features.inception")``): the name is listed and checked at once, and the module is imported the first
    time the entry itself is needed, so listing names costs no import of heavy code.
    """

    def __init__(self, kind: str, flag: str | None = None) -> None:
        self.kind = kind
        self.flag = flag
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._declared: dict[str, str] = {}  # name -> module that registers it on import

    def declare(self, name: str, module: str) -> None:
        """``module`` registers ``name`` when imported; import it only when the entry is needed."""
        if name in self._entries or name in self._aliases or name in self._declared:
            raise ValueError(f"{self.kind} {name!r} is declared twice")
        self._declared[name] = module

    def register(self, name: str, aliases: Iterable[str] = ()) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            if name in self._entries or name in self._aliases:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            for alias in aliases:
                self.alias(alias, name)
            return obj

        return decorate

    def alias(self, alias: str, name: str) -> None:
        """Make ``alias`` another name of the registered ``name`` (e.g. a peer tool's name for it)."""
        if name not in self._entries:
            raise ValueError(f"{self.kind} alias {alias!r}: {name!r} is not registered")
        if alias in self._entries or self._aliases.get(alias, name) != name:
            raise ValueError(f"{self.kind} alias {alias!r} is registered twice")
        self._aliases[alias] = name

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases; an unknown name is returned unchanged."""
        return self._aliases.get(name, name)

    def get(self, name: str) -> T:
        key = self.canonical(name)
        if key not in self._entries and key in self._declared:
            import importlib

            importlib.import_module(self._declared[key])  # registers it
            if key not in self._entries:
                raise ValueError(f"{self.kind} {key!r}: module {self._declared[key]} did not register it")
        try:
            return self._entries[key]
        except KeyError:
            where = f" ({self.flag})" if self.flag else ""
            aliases = f" (aliases: {self._describe_aliases()})" if self._aliases else ""
            hint = did_you_mean(name, [*self._entries, *self._declared, *self._aliases])
            raise ConfigError(
                f"unknown {self.kind}{where} {name!r}{hint}; expected one of: {', '.join(self.names())}{aliases}"
            ) from None

    def _describe_aliases(self) -> str:
        return ", ".join(f"{a} = {n}" for a, n in sorted(self._aliases.items()))

    def names(self) -> list[str]:
        return sorted({*self._entries, *self._declared})

    def aliases(self) -> dict[str, str]:
        """alias -> registered name."""
        return dict(sorted(self._aliases.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases or name in self._declared

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

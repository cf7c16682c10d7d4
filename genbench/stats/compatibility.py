"""The compatibility policy: which features and statistics may be compared, in one place.

Two inputs are comparable when they were made the same way. The **identity** of an input is
the metadata a feature or statistics file records (``meta``), or, for images extracted in this
run, the extractor's identity plus the arithmetic precision. These fields must match:

============== ===============================================================
extractor       the network's canonical name (``inception-v3``, ``fmnist-cnn``)
weights_sha256  the sha256 of the weights file the network was built from
layer           which layer the features come from
preprocessing   the resize/normalise policy the images went through
precision       float32, tf32 or bf16; a file that does not record it is float32
                (every file written before precision was recorded was)
feature_dim     the width of a feature vector
protocol        the paper protocol (``--protocol``: adm, edm2, ...) the numbers were made under
============== ===============================================================

A field that one side records and the other does not is *unchecked*; an input without any
metadata (a plain mu/sigma ``.npz`` from pytorch-fid or TTUR, a bare feature array) leaves
every field unchecked. Unchecked is allowed, with a warning that names the input and the
fields, and the result's provenance lists them under ``unchecked``; a field that both sides
record and that differs is refused with :class:`~genbench.errors.ReferenceStatsError`, the
same message from every verb.

``--extractor`` and ``--preprocessing`` state the space of a file that does not record it
(:func:`stated_fields`): the input takes those fields, which stay unchecked, and its provenance
records them under ``stated``. A metric defined in one space (CMMD) can then be computed on
plain features the user vouches for; a field a file records is never replaced.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import ReferenceStatsError

#: The identity fields, in the order they are checked and reported.
IDENTITY_FIELDS: tuple[str, ...] = ("extractor", "weights_sha256", "layer", "preprocessing", "precision", "feature_dim",
                                     "protocol")

#: Fields whose absence means "none" when choosing among candidates (:func:`same_identity`): statistics made
#: without a protocol match a run without one.
OPTIONAL: tuple[str, ...] = ("protocol",)

#: What a file that does not record a field was made with, where that is known.
IMPLIED: dict[str, object] = {"precision": "float32"}


@dataclass(frozen=True)
class Side:
    """One input as the policy sees it: how to name it in a message, and its identity (None: no metadata)."""

    what: str  # e.g. "reference input stats.npz (--ref)"
    identity: Mapping[str, object] | None


def identity_fields(identity: Mapping[str, object] | None) -> dict[str, object] | None:
    """The identity fields of a metadata dict (implied values filled in), or None without metadata."""
    if identity is None:
        return None
    out = {k: identity[k] for k in IDENTITY_FIELDS if identity.get(k) is not None}
    for key, value in IMPLIED.items():
        out.setdefault(key, value)
    return out


def mismatch_message(what: str, key: str, value: object, other: str, other_value: object) -> str:
    """The one refusal message: the input, the field, both values."""
    hint = HINTS.get(key, "")
    if key == "preprocessing":  # name the policy that reproduces the input's features
        hint = (f"to compare with {what}, extract with --preprocessing {value}; to compare with {other}, with "
                f"--preprocessing {other_value}")
    return (f"{what} was built with {key}={value!r}, but {other} uses {key}={other_value!r}; features and "
            "statistics made under different settings cannot be compared" + (f" ({hint})" if hint else ""))


#: What to do about a mismatch of one field, where there is something to say.
HINTS = {
    "precision": "extract both sides at one --precision: bf16/tf32 features are not float32 statistics",
    "extractor": "pass --extractor to match the reference, or a reference built with this extractor",
    "protocol": "a protocol's numbers are compared only with a reference and results made under the same --protocol",
}


def same_identity(a: Mapping[str, object] | None, b: Mapping[str, object] | None) -> bool:
    """True when both record every identity field and all agree (implied values filled in): the policy's strict
    form, for choosing among candidates (bundled statistics for an extractor) rather than refusing."""
    have, want = identity_fields(a), identity_fields(b)
    if have is None or want is None:
        return False
    return all(have.get(k) == want.get(k) and (k in have or k in OPTIONAL) for k in IDENTITY_FIELDS)


def check_compatible(sides: Sequence[Side], expected: Side | None = None, warn: bool = True) -> dict[str, list[str]]:
    """Refuse sides built under other settings than ``expected`` (default: the first side with metadata).

    Returns the unchecked fields per side (``{what: [field, ...]}``, empty when everything was
    checked) and, unless ``warn`` is False, warns once naming them. Raises ReferenceStatsError
    at the first field that differs.
    """
    anchor = expected if expected is not None else next((s for s in sides if s.identity is not None), None)
    want = identity_fields(anchor.identity) if anchor is not None else None
    unchecked: dict[str, list[str]] = {}
    for side in sides:
        if anchor is not None and side is anchor:
            continue
        have = identity_fields(side.identity)
        if have is None or want is None:
            unchecked[side.what] = list(IDENTITY_FIELDS)
            continue
        assert anchor is not None
        for key in IDENTITY_FIELDS:
            if key in have and key in want:
                if have[key] != want[key]:
                    raise ReferenceStatsError(mismatch_message(side.what, key, have[key], anchor.what, want[key]))
            elif key in have or key in want:
                unchecked.setdefault(side.what, []).append(key)
    if warn and unchecked:
        warnings.warn(unchecked_message(unchecked), UserWarning, stacklevel=3)
    return unchecked


#: The identity fields an option can state for a file that does not record them: field -> the option.
STATABLE = {"extractor": "--extractor", "preprocessing": "--preprocessing"}


def stated_fields(what: str, identity: Mapping[str, object] | None, stated: Mapping[str, object | None]
                  ) -> dict[str, object]:
    """The fields ``stated`` by options (``{"extractor": ..., "preprocessing": ...}``, None: not given) that an input
    without them takes: the space its plain features are in, as the user says (unchecked: nothing can verify it).

    A field the input records is never replaced: stating another value raises ReferenceStatsError naming both.
    """
    out: dict[str, object] = {}
    for key, value in stated.items():
        if value is None or key not in STATABLE:
            continue
        recorded = (identity or {}).get(key)
        if recorded is None:
            out[key] = value
        elif recorded != value:
            raise ReferenceStatsError(mismatch_message(what, key, recorded, STATABLE[key], value))
    return out


def unchecked_message(unchecked: Mapping[str, Sequence[str]]) -> str:
    """The one warning for inputs whose provenance could not be checked."""
    parts = [f"{what} ({', '.join(fields)})" for what, fields in unchecked.items()]
    return ("provenance unchecked, comparing anyway: " + "; ".join(parts) + " - a file without metadata cannot "
            "show it was made with the same extractor, weights, layer, preprocessing and precision")

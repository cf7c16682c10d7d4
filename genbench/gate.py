"""The CI quality gate: compare a new result against a baseline with per-metric rules (pure logic, no I/O).

Results are the JSON documents of :class:`~genbench.results.records.ScoreResult` (``{"metrics": ..., "provenance": ...}``).
A metric's headline number is its ``value`` (or ``mean``); ``ci95`` is its bootstrap 95% interval.

Rules (CLI flags of ``genbench check``):

========================  =====================================================================
``max``  (``--max M=V``)      the new value must be <= V
``min``  (``--min M=V``)      the new value must be >= V
``max_increase`` (``--max-increase M=D``)  new - old must be <= D (for lower-is-better metrics)
``max_decrease`` (``--max-decrease M=D``)  old - new must be <= D (for higher-is-better metrics)
``within_uncertainty`` (``--within-uncertainty``)  regressed only when the new 95% interval lies
                          entirely on the worse side of the baseline's 95% interval (the intervals
                          do not overlap and the new one is worse); applies to every metric that
                          has ``ci95``
========================  =====================================================================

Which direction is worse is declared once, by each metric in the registry (``higher_is_better``); a reported name
maps to its kind by its first word (``fid``/``fd_fmnist`` -> ``fd``, ``is_fmnist`` -> ``is``,
``fd_fmnist_infinity`` -> ``fd-infinity``, which inherits the direction of ``fd``).

Usage errors raise :class:`~genbench.errors.ConfigError` (the CLI exits 2): a rule on a metric absent
from a result, a relative rule without a baseline, a rule against the metric's direction, missing
intervals for ``within_uncertainty``, and incompatible provenance (see :func:`incompatibilities`).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from .errors import ConfigError, InputError
from .metrics.registry import METRICS, direction, metric_kind
from .metrics.values import headline

LOWER, HIGHER = "lower", "higher"

RULE_KINDS = ("max", "min", "max_increase", "max_decrease", "within_uncertainty")
RULE_FLAGS = {
    "max": "--max",
    "min": "--min",
    "max_increase": "--max-increase",
    "max_decrease": "--max-decrease",
    "within_uncertainty": "--within-uncertainty",
}

#: Provenance checks a user may waive with ``--ignore-provenance FIELD``.
PROVENANCE_FIELDS = (
    "protocol", "extractor", "layer", "preprocessing", "weights_sha256", "feature_dim", "precision", "reference", "n_generated",
    "metric_options",
)
#: Metric options that may differ between runs without changing what is measured.
_FREE_OPTIONS = frozenset({"seed", "bootstrap", "kid_subsets"})


# ----------------------------------------------------------------------------- metric kinds


def better(name: str) -> str | None:
    """``"lower"`` or ``"higher"``: which values of metric ``name`` are better (the metric registry's
    ``higher_is_better``); None when undeclared."""
    return direction(name)


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_result_document(doc: object, where: str) -> dict:
    """``doc`` if it is a well-formed result document; InputError naming ``where`` and the bad field otherwise.

    A result document is a JSON object with ``metrics``: an object mapping each metric name to an object
    with a finite number ``value`` or ``mean`` (optional finite ``std``), and an optional ``ci95`` of two
    finite numbers; ``provenance``, when present, is an object.
    """
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a result document (a JSON object), got {type(doc).__name__}")
    metrics = doc.get("metrics")
    if not isinstance(metrics, dict):
        raise InputError(f"{where}: expected a 'metrics' object (from genbench score --json), got {type(metrics).__name__}")
    for name, entry in metrics.items():
        if not isinstance(entry, dict):
            raise InputError(f"{where}: metric {name!r} must be an object such as {{\"value\": 12.3}}, "
                             f"got {type(entry).__name__} {entry!r}")
        keys = [k for k in ("value", "mean") if k in entry]
        if not keys:
            raise InputError(f"{where}: metric {name!r} has neither 'value' nor 'mean'")
        for key in (*keys, *(["std"] if "std" in entry else [])):
            if not _finite_number(entry[key]):
                raise InputError(f"{where}: metric {name!r}: {key!r} must be a finite number, got {entry[key]!r}")
        if "ci95" in entry and entry["ci95"] is not None:
            ci = entry["ci95"]
            if not (isinstance(ci, list) and len(ci) == 2 and all(_finite_number(c) for c in ci)):
                raise InputError(f"{where}: metric {name!r}: 'ci95' must be a list of two finite numbers [low, high], "
                                 f"got {ci!r}")
    if "provenance" in doc and doc["provenance"] is not None and not isinstance(doc["provenance"], dict):
        raise InputError(f"{where}: 'provenance' must be an object, got {type(doc['provenance']).__name__}")
    prov = doc.get("provenance") or {}
    for key in ("metric_options", "inputs"):
        if key in prov and prov[key] is not None and not isinstance(prov[key], dict):
            raise InputError(f"{where}: 'provenance.{key}' must be an object, got {type(prov[key]).__name__}")
    return doc




def _interval(entry: dict) -> tuple[float, float] | None:
    ci = entry.get("ci95")
    if ci is None:
        return None
    lo, hi = float(ci[0]), float(ci[1])
    return (lo, hi) if lo <= hi else (hi, lo)


# ----------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """One check on one metric. ``limit`` is unused (None) for ``within_uncertainty``."""

    metric: str
    kind: str
    limit: float | None = None

    def describe(self) -> str:
        if self.kind == "within_uncertainty":
            return "within 95% CI"
        prefix = {"max": "<=", "min": ">=", "max_increase": "increase <=", "max_decrease": "decrease <="}[self.kind]
        return f"{prefix} {self.limit:g}"

    @property
    def relative(self) -> bool:
        return self.kind in ("max_increase", "max_decrease", "within_uncertainty")


def parse_rule(text: str, kind: str) -> Rule:
    """``"fid=30"`` -> Rule("fid", kind, 30.0); raises ConfigError naming the flag on bad input."""
    flag = RULE_FLAGS[kind]
    metric, sep, number = text.partition("=")
    metric = metric.strip()
    if not sep or not metric:
        raise ConfigError(f"{flag} {text!r}: expected METRIC=NUMBER, e.g. {flag} fd_fmnist=0.5")
    try:
        limit = float(number)
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: {number.strip()!r} is not a number") from None
    if not math.isfinite(limit):
        raise ConfigError(f"{flag} {text!r}: the limit must be a finite number")
    if kind in ("max_increase", "max_decrease") and limit < 0:
        raise ConfigError(f"{flag} {text!r}: an allowed change must be >= 0")
    return Rule(metric, kind, limit)


# ----------------------------------------------------------------------------- provenance


def _reference_differences(old: dict, new: dict) -> list[str]:
    out = []
    a, b = old.get("reference_id"), new.get("reference_id")
    if (a or b) and a != b:
        out.append(f"reference id: {a!r} -> {b!r}")
    a, b = old.get("sha256"), new.get("sha256")
    if a and b and a != b:
        out.append(f"reference sha256: {a} -> {b}")
    if old.get("n") != new.get("n"):
        out.append(f"reference n: {old.get('n')!r} -> {new.get('n')!r}")
    identified = any(old.get(k) or new.get(k) for k in ("reference_id", "sha256"))
    if not identified:
        for key in ("kind", "location"):
            if old.get(key) != new.get(key):
                out.append(f"reference {key}: {old.get(key)!r} -> {new.get(key)!r}")
    return out


def _implied_metric_options() -> dict:
    """What a result document that predates a metric option was computed with: the options added since, at their
    defaults (``is_split_size`` None, ``covariance`` unbiased)."""
    from .config import MetricOptions

    defaults = MetricOptions().to_dict()
    return {k: defaults[k] for k in ("is_split_size", "covariance")}


def incompatibilities(old: dict, new: dict, ignore: tuple[str, ...] | list[str] = ()) -> list[str]:
    """What makes two provenance dicts measure different things, as readable lines (empty: compatible).

    Checked: the paper protocol (``--protocol``), the extractor identity (extractor, layer, preprocessing,
    weights_sha256, feature_dim),
    the numeric precision of extraction (when both record it), the reference (id, sha256 and n;
    kind and location when neither side has an id or hash), the number of generated samples
    (FD and IS are biased in 1/N), and metric options other than seed, bootstrap replicates and
    KID subset count. ``ignore`` waives named checks (:data:`PROVENANCE_FIELDS`).
    """
    unknown = sorted(set(ignore) - set(PROVENANCE_FIELDS))
    if unknown:
        raise ConfigError(
            f"--ignore-provenance {', '.join(unknown)}: unknown field; expected one of: {', '.join(PROVENANCE_FIELDS)}"
        )
    out: list[str] = []
    for key in ("protocol", "extractor", "layer", "preprocessing", "weights_sha256", "feature_dim"):
        if key not in ignore and old.get(key) != new.get(key):
            out.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    if "precision" not in ignore and "precision" in old and "precision" in new and old["precision"] != new["precision"]:
        out.append(f"precision: {old['precision']!r} -> {new['precision']!r}")  # numeric precision of extraction
    old_inputs, new_inputs = old.get("inputs") or {}, new.get("inputs") or {}
    if "reference" not in ignore:
        out += _reference_differences(old_inputs.get("reference") or {}, new_inputs.get("reference") or {})
    if "n_generated" not in ignore:
        a, b = (old_inputs.get("generated") or {}).get("n"), (new_inputs.get("generated") or {}).get("n")
        if a != b:
            out.append(f"generated n: {a!r} -> {b!r} (FD and IS depend on the sample count)")
    if "metric_options" not in ignore:
        a, b = old.get("metric_options") or {}, new.get("metric_options") or {}
        implied = _implied_metric_options() if a and b else {}  # a result older than an option had its default
        for key in sorted((set(a) | set(b)) - _FREE_OPTIONS):
            if a.get(key, implied.get(key)) != b.get(key, implied.get(key)):
                out.append(f"metric option {key}: {a.get(key, implied.get(key))!r} -> {b.get(key, implied.get(key))!r}")
    return out


# ----------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Verdict:
    """One row of the gate's table. ``status``: ``ok``, ``regressed``, or ``-`` (no rule, shown for context)."""

    metric: str
    rule: str
    old: float | None
    new: float
    status: str
    detail: str = ""
    old_ci95: tuple[float, float] | None = None
    new_ci95: tuple[float, float] | None = None

    @property
    def delta(self) -> float | None:
        return None if self.old is None else self.new - self.old

    def to_dict(self) -> dict:
        d = asdict(self)
        d["delta"] = self.delta
        for key in ("old_ci95", "new_ci95"):
            d[key] = list(d[key]) if d[key] is not None else None
        return d


@dataclass
class GateReport:
    """All verdicts plus what was compared; ``passed`` is True when no rule was broken."""

    verdicts: list[Verdict]
    baseline: dict = field(default_factory=dict)  # a short description of the baseline (where it came from)
    new: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not any(v.status == "regressed" for v in self.verdicts)

    @property
    def regressions(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "regressed"]

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "exit_code": self.exit_code,
            "regressions": [v.metric for v in self.regressions],
            "verdicts": [v.to_dict() for v in self.verdicts],
            "baseline": self.baseline,
            "new": self.new,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def _rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for v in self.verdicts:
            rows.append((
                v.metric,
                _fmt(v.old, v.old_ci95),
                _fmt(v.new, v.new_ci95),
                "" if v.delta is None else f"{v.delta:+.4g}",
                v.rule,
                {"ok": "ok", "regressed": "REGRESSED", "-": "-"}[v.status],
            ))
        return rows

    def format_table(self) -> str:
        """A plain-text table for terminals and logs."""
        header = ("metric", "old", "new", "delta", "rule", "verdict")
        rows = [header, *self._rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append("")
        lines.append(self.summary())
        for v in self.regressions:
            if v.detail:
                lines.append(f"  {v.metric}: {v.detail}")
        return "\n".join(lines)

    def summary(self) -> str:
        if self.passed:
            checked = sum(v.status != "-" for v in self.verdicts)
            return f"PASSED: {checked} check(s) hold"
        names = ", ".join(dict.fromkeys(v.metric for v in self.regressions))
        return f"FAILED: regression in {names}"

    def format_markdown(self) -> str:
        """A Markdown block for a pull-request comment."""
        mark = "✅" if self.passed else "❌"
        lines = [f"### {mark} genbench quality gate: {self.summary()}", ""]
        lines.append("| metric | baseline | new | delta | rule | verdict |")
        lines.append("|---|---:|---:|---:|---|---|")
        for row in self._rows():
            cells = [c.replace("|", "\\|") for c in row]
            if cells[5] == "REGRESSED":
                cells[5] = "**REGRESSED**"
            lines.append("| " + " | ".join(cells) + " |")
        details = [f"- `{v.metric}`: {v.detail}" for v in self.regressions if v.detail]
        if details:
            lines += ["", *details]
        context = []
        for label, info in (("baseline", self.baseline), ("new", self.new)):
            if info:
                context.append(f"{label}: " + ", ".join(f"{k} `{val}`" for k, val in info.items() if val is not None))
        if context:
            lines += ["", "<sub>" + "<br>".join(context) + "</sub>"]
        return "\n".join(lines) + "\n"


def _fmt(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return ""
    text = f"{value:.4g}"
    if ci is not None:
        text += f" [{ci[0]:.4g}, {ci[1]:.4g}]"
    return text


def _resolve_name(name: str, metrics: dict, where: str, flag: str) -> str:
    """An exact metric name, or a generic kind (``fd``, ``is``, ``kid``, ...) naming exactly one metric."""
    if name in metrics:
        return name
    matches = [m for m in metrics if metric_kind(m) == name]
    if len(matches) == 1:
        return matches[0]
    have = ", ".join(metrics) or "(none)"
    raise ConfigError(f"{flag} {name}: metric {name!r} is not in the {where} result; it has: {have}")


def _check_direction(rule: Rule, flag: str) -> None:
    direction = better(rule.metric)
    if rule.kind == "max_increase" and direction == HIGHER:
        raise ConfigError(f"{flag} {rule.metric}: higher {rule.metric} is better, so a regression is a decrease; use --max-decrease")
    if rule.kind == "max_decrease" and direction == LOWER:
        raise ConfigError(f"{flag} {rule.metric}: lower {rule.metric} is better, so a regression is an increase; use --max-increase")


def _limit(rule: Rule) -> float:
    """The bound of a ``max``/``min``/``max_increase``/``max_decrease`` rule; ConfigError for a Rule built without one."""
    if rule.limit is None:
        flag = RULE_FLAGS[rule.kind]
        raise ConfigError(f"{flag} {rule.metric}: the rule has no limit; expected {flag} {rule.metric}=NUMBER")
    return rule.limit


def _judge(rule: Rule, old: dict | None, new: dict) -> Verdict:
    new_v, old_v = headline(new), (headline(old) if old is not None else None)
    new_ci, old_ci = _interval(new), (_interval(old) if old is not None else None)
    ok, detail = True, ""
    if rule.kind == "max":
        limit = _limit(rule)
        ok = new_v <= limit
        detail = "" if ok else f"{new_v:.6g} is above the maximum {limit:g}"
    elif rule.kind == "min":
        limit = _limit(rule)
        ok = new_v >= limit
        detail = "" if ok else f"{new_v:.6g} is below the minimum {limit:g}"
    elif rule.kind == "max_increase":
        limit = _limit(rule)
        assert old_v is not None  # evaluate() resolves the metric of a relative rule in the baseline
        ok = new_v - old_v <= limit
        detail = "" if ok else f"rose by {new_v - old_v:.6g}, more than the allowed {limit:g}"
    elif rule.kind == "max_decrease":
        limit = _limit(rule)
        assert old_v is not None  # evaluate() resolves the metric of a relative rule in the baseline
        ok = old_v - new_v <= limit
        detail = "" if ok else f"fell by {old_v - new_v:.6g}, more than the allowed {limit:g}"
    else:  # within_uncertainty
        if new_ci is None or old_ci is None:  # a null ci95, or a hand-built Rule on a metric without intervals
            which = "new result" if new_ci is None else "baseline"
            raise ConfigError(f"--within-uncertainty: {rule.metric!r} has no 95% interval (ci95) in the {which}; "
                              "score both with --bootstrap N")
        lower_better = better(rule.metric) == LOWER
        worse = new_ci[0] > old_ci[1] if lower_better else new_ci[1] < old_ci[0]
        ok = not worse
        side = "above" if lower_better else "below"
        detail = "" if ok else (
            f"new 95% CI [{new_ci[0]:.6g}, {new_ci[1]:.6g}] lies entirely {side} the baseline's [{old_ci[0]:.6g}, {old_ci[1]:.6g}]"
        )
    return Verdict(rule.metric, rule.describe(), old_v, new_v, "ok" if ok else "regressed", detail, old_ci, new_ci)


def evaluate(
    new: dict,
    baseline: dict | None,
    rules: list[Rule],
    within_uncertainty: bool = False,
    ignore_provenance: tuple[str, ...] | list[str] = (),
) -> GateReport:
    """Judge the result document ``new`` against ``baseline`` (or None: absolute bounds only).

    Raises ConfigError on a usage error (see the module docstring). Metrics present in both
    results but under no rule are listed with status ``-``.
    """
    validate_result_document(new, "the new result")
    if baseline is not None:
        validate_result_document(baseline, "the baseline")
    new_metrics: dict = new.get("metrics") or {}
    old_metrics: dict = (baseline or {}).get("metrics") or {}
    resolved: list[Rule] = []
    for rule in rules:
        flag = RULE_FLAGS[rule.kind]
        if rule.relative and baseline is None:
            raise ConfigError(f"{flag} {rule.metric}: a relative rule needs a baseline (--baseline FILE or history id)")
        name = _resolve_name(rule.metric, new_metrics, "new", flag)
        if rule.relative:
            name = _resolve_name(name, old_metrics, "baseline", flag)
        resolved.append(Rule(name, rule.kind, rule.limit))
        _check_direction(resolved[-1], flag)
    if within_uncertainty:
        if baseline is None:
            raise ConfigError("--within-uncertainty compares with a baseline; pass --baseline FILE or a history id")
        resolved += _uncertainty_rules(new_metrics, old_metrics)
    if baseline is not None and any(r.relative for r in resolved):
        problems = incompatibilities(baseline.get("provenance") or {}, new.get("provenance") or {}, ignore_provenance)
        if problems:
            raise ConfigError(
                "the baseline and the new result were not measured the same way, so they cannot be compared: "
                + "; ".join(problems) + " (waive a check with --ignore-provenance FIELD)"
            )
    verdicts = []
    ruled = set()
    for rule in resolved:
        verdicts.append(_judge(rule, old_metrics.get(rule.metric), new_metrics[rule.metric]))
        ruled.add(rule.metric)
    for name, entry in new_metrics.items():  # context rows: shared metrics without a rule
        if name not in ruled and name in old_metrics and _has_headline(entry) and _has_headline(old_metrics[name]):
            old = old_metrics[name]
            verdicts.append(Verdict(name, "-", headline(old), headline(entry), "-", "", _interval(old), _interval(entry)))
    order = {name: i for i, name in enumerate(new_metrics)}
    verdicts.sort(key=lambda v: order[v.metric])  # stable: one metric's rules stay together, in the given order
    return GateReport(verdicts)


def _has_headline(entry: dict) -> bool:
    return "value" in entry or "mean" in entry


def _uncertainty_rules(new_metrics: dict, old_metrics: dict) -> list[Rule]:
    out = []
    for name, entry in new_metrics.items():
        has_new = "ci95" in entry
        has_old = name in old_metrics and "ci95" in old_metrics[name]
        if not (has_new or has_old):
            continue
        if name not in old_metrics:
            raise ConfigError(f"--within-uncertainty: metric {name!r} is in the new result but not in the baseline")
        if not (has_new and has_old):
            which = "baseline" if has_new else "new result"
            raise ConfigError(
                f"--within-uncertainty: {name!r} has a 95% interval in one result but not in the {which}; "
                "score both with --bootstrap N"
            )
        if better(name) is None:
            raise ConfigError(
                f"--within-uncertainty: genbench does not know whether higher or lower {name!r} is better; "
                f"declared kinds: {', '.join(k for k in METRICS.names() if METRICS.get(k).higher_is_better is not None)}"
            )
        out.append(Rule(name, "within_uncertainty"))
    if not out:
        raise ConfigError(
            "--within-uncertainty needs 95% intervals (ci95) in both results, and neither has any; "
            "score both with --bootstrap N (e.g. --bootstrap 200)"
        )
    return out

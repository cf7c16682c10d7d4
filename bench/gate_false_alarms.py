"""How often does ``genbench check --within-uncertainty`` cry wolf, and what does it catch?

Two measurements on real data (Fashion-MNIST), with the gate's own code (:func:`genbench.gate.evaluate`)
and the registered metrics (bootstrap 95% intervals exactly as ``genbench score --bootstrap B``):

A. False alarms. Baseline and "new" results are two independent seeded random subsets (default 5k)
   of the test split, scored against the training split statistics with different seeds. Nothing
   changed, so every regression verdict is a false alarm. Repeated ``--runs`` times (default 40);
   also reports the spread of FD differences, i.e. which ``--max-increase`` would hold 95% of the time.

B. Detection at N = 10k. The pool of 20k held-out images (test split + the last 10k of the training
   split) is split at random into two disjoint halves: the baseline is one half, clean; the new result
   is the other half with Gaussian pixel noise of std sigma (gray levels 0..255, rounded, clipped).
   The reference is the first 50k training images, so neither half is in it. For each sigma,
   ``--detect-runs`` repeats (default 20); reported: mean FD rise and the fraction of runs in which
   the gate flags FD. The smallest FD rise flagged in >= 95% of runs is "detected reliably".

Usage (from the repository root):

    python bench/gate_false_alarms.py --extractor fmnist-cnn --json bench/results/gate_false_alarms.json
    python bench/gate_false_alarms.py --extractor test-tiny      # no weights needed (tests/conftest.py)

Features of the full splits are cached in ``--cache`` (default $GENBENCH_CACHE/bench) per extractor
identity, so a rerun only repeats the metric computations.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from genbench.config import (
    ExtractOptions,
    MetricOptions,
    cache_dir,
)
from genbench.evaluate import Evaluated, extract_source
from genbench.features import build_extractor
from genbench.gate import evaluate
from genbench.metrics.registry import METRICS, output_name
from genbench.sources.resolve import as_source
from genbench.stats.feature_stats import FeatureStats


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data and features


def load_images(spec: str) -> np.ndarray:
    """uint8 [N, 3, 28, 28] of a data set split."""
    src = as_source(spec)
    return src.read_batch(0, len(src))


def extract(net, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    options = {"batch_size": batch_size, "progress": False}
    if "cache" in {f.name for f in fields(ExtractOptions)}:
        options["cache"] = False  # noisy copies are used once; keep them out of the feature cache
    xo = ExtractOptions(**options)
    ev = extract_source(as_source(images), net, xo, role="generated", keep_features=True, keep_logits=True)
    return ev.features, ev.logits


def cached_features(net, spec: str, images: np.ndarray, cache: Path, batch_size: int):
    ident = net.identity().to_dict()
    key = hashlib.sha256(json.dumps([ident, spec, images.shape]).encode()).hexdigest()[:16]
    path = cache / f"{spec.replace(':', '-')}_{net.name}_{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return data["features"], (data["logits"] if "logits" in data.files else None)
    started = time.perf_counter()
    features, logits = extract(net, images, batch_size)
    log(f"  extracted {spec}: {features.shape} in {time.perf_counter() - started:.1f} s")
    cache.mkdir(parents=True, exist_ok=True)
    arrays = {"features": features} | ({"logits": logits} if logits is not None else {})
    np.savez(path, **arrays)
    return features, logits


def noisy(gray_rgb: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Add N(0, sigma^2) gray-level noise (same on the three channels), round, clip to uint8."""
    if sigma == 0:
        return gray_rgb
    gray = gray_rgb[:, 0].astype(np.float32)
    gray += np.random.default_rng(seed).normal(0.0, sigma, gray.shape).astype(np.float32)
    out = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    return np.repeat(out[:, None], 3, axis=1)


# ----------------------------------------------------------------------------- results


class Scorer:
    """Builds result documents exactly as ``genbench score`` would, from precomputed features."""

    def __init__(self, net, ref_features: np.ndarray, kinds: list[str], bootstrap: int, ref_id: str) -> None:
        self.net = net
        self.kinds = kinds
        self.bootstrap = bootstrap
        self.ref = Evaluated("reference", ref_id, None, FeatureStats.from_features(ref_features), features=ref_features)
        self.ref_id = ref_id
        self.names = {kind: output_name(kind, net.metric_names) for kind in kinds}

    def score(self, features: np.ndarray, logits: np.ndarray | None, seed: int) -> dict:
        gen = Evaluated("generated", "bench", None, FeatureStats.from_features(features), features=features, logits=logits)
        mo = MetricOptions(seed=seed, bootstrap=self.bootstrap)
        metrics = {self.names[k]: METRICS.get(k).compute(gen, self.ref, mo) for k in self.kinds}
        prov = {
            **self.net.identity().to_dict(),
            "inputs": {"generated": {"kind": "array", "n": len(features)},
                       "reference": {"kind": "features", "reference_id": self.ref_id, "n": self.ref.n}},
            "metric_options": mo.to_dict(),
            "seed": seed,
        }
        return {"metrics": metrics, "provenance": prov}


def headline(entry: dict) -> float:
    return float(entry.get("value", entry.get("mean")))


# ----------------------------------------------------------------------------- A: false alarms


def false_alarms(args, net, test_f, test_l, train_f) -> dict:
    with_kid = Scorer(net, train_f, ["fd", "kid", "is"], args.bootstrap, "fashion-mnist:train")
    without_kid = Scorer(net, train_f, ["fd", "is"], args.bootstrap, "fashion-mnist:train")
    fd, kid = with_kid.names["fd"], with_kid.names["kid"]
    n = len(test_f)
    rows = []
    started = time.perf_counter()
    for r in range(args.runs):
        docs = []
        scorer = with_kid if r < args.kid_runs else without_kid  # KID is the slow part (100 subsets of 1000)
        for side in (0, 1):
            seed = 1000 * r + side
            idx = np.random.default_rng(seed).choice(n, args.subset, replace=False)
            docs.append(scorer.score(test_f[idx], None if test_l is None else test_l[idx], seed=seed))
        report = evaluate(docs[1], docs[0], [], within_uncertainty=True)
        flagged = {v.metric for v in report.regressions}
        rows.append({
            "run": r,
            "fd_old": headline(docs[0]["metrics"][fd]), "fd_new": headline(docs[1]["metrics"][fd]),
            "fd_ci_old": docs[0]["metrics"][fd]["ci95"], "fd_ci_new": docs[1]["metrics"][fd]["ci95"],
            **({"kid_old": headline(docs[0]["metrics"][kid]), "kid_new": headline(docs[1]["metrics"][kid]),
                "kid_ci_old": docs[0]["metrics"][kid]["ci95"], "kid_ci_new": docs[1]["metrics"][kid]["ci95"]}
               if kid in docs[0]["metrics"] else {}),
            "fd_flagged": fd in flagged, "kid_flagged": kid in flagged, "any_flagged": not report.passed,
        })
        log(f"  A run {r + 1}/{args.runs}: {fd} {rows[-1]['fd_old']:.4g} -> {rows[-1]['fd_new']:.4g}, "
            f"flagged: {sorted(flagged) or '-'} ({time.perf_counter() - started:.0f} s)")
    delta = np.array([x["fd_new"] - x["fd_old"] for x in rows])
    fd_vals = np.array([x["fd_old"] for x in rows] + [x["fd_new"] for x in rows])
    ci = np.array([x["fd_ci_old"] for x in rows] + [x["fd_ci_new"] for x in rows])
    summary = {
        "runs": args.runs,
        "subset": args.subset,
        "bootstrap": args.bootstrap,
        "fd_false_alarms": int(sum(x["fd_flagged"] for x in rows)),
        "kid_runs": min(args.kid_runs, args.runs),
        "kid_false_alarms": int(sum(x["kid_flagged"] for x in rows)),
        "any_false_alarms": int(sum(x["any_flagged"] for x in rows)),
        "fd_mean": float(fd_vals.mean()),
        "fd_std_between_subsets": float(fd_vals.std(ddof=1)),
        "fd_ci_mean_width": float((ci[:, 1] - ci[:, 0]).mean()),
        "fd_ci_contains_value": float(np.mean((ci[:, 0] <= fd_vals) & (fd_vals <= ci[:, 1]))),
        "fd_delta_abs_p95": float(np.percentile(np.abs(delta), 95)),
        "fd_delta_max": float(delta.max()),
    }
    return {"summary": summary, "rows": rows}


# ----------------------------------------------------------------------------- B: detection


def detection(args, net, train_images, train_f, test_images, test_f) -> dict:
    split = len(train_f) - args.detect_n
    ref_f = train_f[:split]
    pool_images = np.concatenate([train_images[split:], test_images])
    pool_f = np.concatenate([train_f[split:], test_f])
    scorer = Scorer(net, ref_f, ["fd"], args.bootstrap, f"fashion-mnist:train[:{split}]")
    fd = scorer.names["fd"]
    levels = []
    started = time.perf_counter()
    baselines = []
    for r in range(args.detect_runs):
        perm = np.random.default_rng(5000 + r).permutation(len(pool_f))
        a, b = perm[: args.detect_n], perm[args.detect_n: 2 * args.detect_n]
        baselines.append((a, b, scorer.score(pool_f[a], None, seed=2 * r)))
    for sigma in args.noise:
        rows = []
        for r, (_, b, base) in enumerate(baselines):
            if sigma == 0:
                features = pool_f[b]
            else:
                features, _ = extract(net, noisy(pool_images[b], sigma, seed=7000 + r), args.batch_size)
            new = scorer.score(features, None, seed=2 * r + 1)
            report = evaluate(new, base, [], within_uncertainty=True)
            rows.append({"run": r, "fd_old": headline(base["metrics"][fd]), "fd_new": headline(new["metrics"][fd]),
                         "fd_ci_old": base["metrics"][fd]["ci95"], "fd_ci_new": new["metrics"][fd]["ci95"],
                         "flagged": not report.passed})
        delta = np.array([x["fd_new"] - x["fd_old"] for x in rows])
        level = {
            "sigma": sigma,
            "fd_old_mean": float(np.mean([x["fd_old"] for x in rows])),
            "fd_delta_mean": float(delta.mean()),
            "fd_delta_min": float(delta.min()),
            "detected": int(sum(x["flagged"] for x in rows)),
            "runs": len(rows),
            "rows": rows,
        }
        levels.append(level)
        log(f"  B sigma {sigma:g}: {fd} rise {level['fd_delta_mean']:.4g} (min {level['fd_delta_min']:.4g}), "
            f"detected {level['detected']}/{len(rows)} ({time.perf_counter() - started:.0f} s)")
    reliable = [lv for lv in levels if lv["sigma"] > 0 and lv["detected"] >= 0.95 * lv["runs"]]
    smallest = min(reliable, key=lambda lv: lv["fd_delta_mean"]) if reliable else None
    return {
        "n": args.detect_n,
        "reference_n": split,
        "levels": levels,
        "smallest_reliable": None if smallest is None else {
            "sigma": smallest["sigma"], "fd_delta_mean": smallest["fd_delta_mean"], "fd_old_mean": smallest["fd_old_mean"],
            "relative": smallest["fd_delta_mean"] / smallest["fd_old_mean"],
        },
    }


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extractor", default="fmnist-cnn", help="fmnist-cnn, or test-tiny (tests/conftest.py)")
    parser.add_argument("--runs", type=int, default=40, help="A: rescoring runs")
    parser.add_argument("--kid-runs", type=int, default=None, help="A: runs that also score KID (default: all)")
    parser.add_argument("--subset", type=int, default=5000, help="A: test-split subset size")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap replicates for the 95%% intervals")
    parser.add_argument("--detect-n", type=int, default=10000, help="B: sample count")
    parser.add_argument("--detect-runs", type=int, default=20, help="B: repeats per noise level")
    parser.add_argument("--noise", type=lambda s: [float(x) for x in s.split(",")], default=[0, 2, 4, 6, 8, 12, 16],
                        help="B: comma-separated pixel noise std (gray levels)")
    parser.add_argument("--skip", choices=["A", "B"], action="append", default=[], help="skip a part")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--cache", type=Path, default=cache_dir() / "bench")
    parser.add_argument("--json", type=Path, default=None, help="write all figures and per-run rows here")
    args = parser.parse_args(argv)
    args.kid_runs = args.runs if args.kid_runs is None else args.kid_runs

    if args.extractor == "test-tiny":
        import tests.conftest  # noqa: F401  (registers the tiny seeded extractor)
    net = build_extractor(args.extractor)
    log(f"extractor {net.name} ({net.feature_dim}-d), weights {net.weights_sha256[:12]}")
    train_images, test_images = load_images("fashion-mnist:train"), load_images("fashion-mnist:test")
    train_f, _ = cached_features(net, "fashion-mnist:train", train_images, args.cache, args.batch_size)
    test_f, test_l = cached_features(net, "fashion-mnist:test", test_images, args.cache, args.batch_size)
    out: dict = {"extractor": net.identity().to_dict(), "rule": "--within-uncertainty (non-overlapping 95% intervals)"}
    started = time.perf_counter()
    if "A" not in args.skip:
        log(f"A: false alarms, {args.runs} runs of two {args.subset}-image test subsets vs the training split")
        out["false_alarms"] = false_alarms(args, net, test_f, test_l, train_f)
        s = out["false_alarms"]["summary"]
        print(f"A  false alarms in {s['runs']} rescorings ({s['subset']} test images vs train, bootstrap {s['bootstrap']}): "
              f"FD {s['fd_false_alarms']}/{s['runs']}, KID {s['kid_false_alarms']}/{s['kid_runs']}, "
              f"any {s['any_false_alarms']}/{s['runs']}")
        print(f"   FD {s['fd_mean']:.4g} ± {s['fd_std_between_subsets']:.3g} between subsets; mean 95% CI width "
              f"{s['fd_ci_mean_width']:.3g}; CI contains the point value in {100 * s['fd_ci_contains_value']:.0f}% of results; "
              f"|ΔFD| 95th percentile {s['fd_delta_abs_p95']:.3g}")
    if "B" not in args.skip:
        log(f"B: detection at n={args.detect_n}, noise levels {args.noise}")
        out["detection"] = detection(args, net, train_images, train_f, test_images, test_f)
        print(f"B  detection at n={args.detect_n} (reference: first {out['detection']['reference_n']} training images):")
        print("   sigma  FD(base)  mean ΔFD  min ΔFD  detected")
        for lv in out["detection"]["levels"]:
            print(f"   {lv['sigma']:>5g}  {lv['fd_old_mean']:>8.4g}  {lv['fd_delta_mean']:>8.4g}  {lv['fd_delta_min']:>7.4g}  "
                  f"{lv['detected']}/{lv['runs']}")
        best = out["detection"]["smallest_reliable"]
        if best:
            print(f"   smallest FD rise flagged in >= 95% of runs: {best['fd_delta_mean']:.4g} "
                  f"({100 * best['relative']:.1f}% of the baseline FD), at sigma {best['sigma']:g}")
        else:
            print("   no noise level was flagged in >= 95% of runs")
    out["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

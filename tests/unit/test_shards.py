"""Shards and their merge: partial statistics (genbench stats --shard K/N) merged exactly (genbench merge)."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from genbench.cli.app import main
from genbench.config import ExtractOptions
from genbench.errors import ConfigError, ReferenceStatsError
from genbench.shards import compute_partial_stats, merge_stats
from genbench.stats.io import FeatureFile, load_stats, save_features
from genbench.stats.shards import load_partial, parse_shard, save_partial
from tests.conftest import make_images

TINY = ExtractOptions(extractor="test-tiny", progress=False)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|."""
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def _one_pass(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of float rows in float64, by numpy alone (independent of genbench)."""
    x = np.asarray(rows, np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1)


@pytest.fixture(scope="module")
def ten_thousand(tmp_path_factory):
    """10,000 small images (a .npy file) and their test-tiny features, extracted once in one pass."""
    import genbench

    folder = tmp_path_factory.mktemp("shards")
    path = folder / "images.npy"
    np.save(path, make_images(10_000, seed=7))
    features = genbench.extract(str(path), extractor="test-tiny", cache=False).features
    return path, features


def test_parse_shard():
    assert parse_shard("0/3") == (0, 3) and parse_shard("15/16") == (15, 16)
    for bad in ("3/3", "-1/3", "1", "a/b", "1/0"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)


def test_three_image_shards_merge_in_any_order_to_one_pass(ten_thousand, tmp_path):
    path, features = ten_thousand
    xo = ExtractOptions(extractor="test-tiny", progress=False, cache=False)
    files = []
    for k in range(3):
        files.append(tmp_path / f"part-{k}.npz")
        save_partial(files[-1], compute_partial_stats(str(path), f"{k}/3", xo))
    assert sum(load_partial(f).stats.n for f in files) == 10_000
    mu, sigma = _one_pass(features)
    results = []
    worst = 0.0
    for order in itertools.permutations(files):
        merged = merge_stats(list(order))
        worst = max(worst, _rel(merged.stats.mean(), mu), _rel(merged.stats.cov(), sigma))
        results.append(merged.stats)
    assert worst < 1e-12
    for other in results[1:]:  # added in shard order whatever the order given: identical to the last bit
        assert np.array_equal(other.total, results[0].total) and np.array_equal(other.outer, results[0].outer)
    single = compute_partial_stats(str(path), "0/1", xo).stats  # genbench's own single pass, for the report
    report = max(_rel(results[0].total, single.total), _rel(results[0].outer, single.outer))
    print(f"\n3 shards of 10,000: max relative error vs numpy one pass {worst:.2e}, sums vs one pass {report:.2e}")
    out = tmp_path / "stats.npz"
    merge_stats(files, out)
    saved = load_stats(out)
    assert _rel(saved.stats.mean(), mu) < 1e-12 and _rel(saved.stats.cov(), sigma) < 1e-12
    assert saved.meta is not None and saved.meta["extractor"] == "test-tiny" and saved.meta["n"] == 10_000
    assert [s["range"] for s in saved.meta["shards"]] == [[0, 3328], [3328, 6656], [6656, 10_000]]


def test_sixteen_shards_of_a_feature_file(ten_thousand, tmp_path):
    _, features = ten_thousand
    ff = tmp_path / "features.npz"
    save_features(ff, FeatureFile(features, None, [str(i) for i in range(len(features))], None,
                                  {"extractor": "test-tiny", "feature_dim": 16}))
    parts = [compute_partial_stats(str(ff), (k, 16), TINY) for k in range(16)]
    sizes = [p.stop - p.start for p in parts]  # 157 batches of 64 cut into 16 shares of 9 or 10 batches
    assert set(sizes[:-1]) == {576, 640} and sum(sizes) == 10_000
    mu, sigma = _one_pass(features)
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(5):
        order = [parts[i] for i in rng.permutation(16)]
        merged = merge_stats(order)
        worst = max(worst, _rel(merged.stats.mean(), mu), _rel(merged.stats.cov(), sigma))
    from genbench.stats.feature_stats import FeatureStats

    single = FeatureStats.from_features(features)  # genbench's one pass over the same rows
    sums = max(_rel(merged.stats.total, single.total), _rel(merged.stats.outer, single.outer))
    print(f"\n16 shards of 10,000: max relative error vs numpy one pass {worst:.2e}, sums vs one pass {sums:.2e}")
    assert sums < 1e-12
    assert worst < 1e-12


def test_refusals_name_the_shard(ten_thousand, tmp_path):
    path, _ = ten_thousand
    files = [tmp_path / f"part-{k}.npz" for k in range(3)]
    for k, f in enumerate(files):
        save_partial(f, compute_partial_stats(str(path), f"{k}/3", TINY))
    with pytest.raises(ReferenceStatsError, match=r"shard\(s\) 1/3 missing"):
        merge_stats([files[0], files[2]])
    with pytest.raises(ReferenceStatsError, match=r"part-1\.npz \(shard 1/3.*overlapping"):
        merge_stats([files[0], files[1], files[1], files[2]])
    other = tmp_path / "other.npy"
    np.save(other, make_images(10_000, seed=8))
    save_partial(tmp_path / "foreign-2.npz", compute_partial_stats(str(other), "2/3", TINY))
    with pytest.raises(ReferenceStatsError, match=r"foreign-2\.npz \(shard 2/3.*source_fingerprint"):
        merge_stats([files[0], files[1], tmp_path / "foreign-2.npz"])
    four = tmp_path / "four-3.npz"
    save_partial(four, compute_partial_stats(str(path), "3/4", TINY))
    with pytest.raises(ReferenceStatsError, match=r"four-3\.npz \(shard 3/4.*shards=4"):
        merge_stats([*files, four])
    merge_stats(files, tmp_path / "stats.npz")
    with pytest.raises(ReferenceStatsError, match=r"stats\.npz: not a partial statistics file"):
        merge_stats([*files[:2], tmp_path / "stats.npz"])
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(files[2].read_bytes()[: files[2].stat().st_size // 2])
    with pytest.raises(ReferenceStatsError, match="damaged.npz"):
        merge_stats([files[0], files[1], damaged])


def test_a_shard_killed_while_writing_leaves_nothing_merge_accepts(ten_thousand, tmp_path):
    """SIGKILL in the middle of writing a shard's arrays: no part-1.npz appears, and the temporary file that is
    left is refused by merge."""
    path, _ = ten_thousand
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        import tests.plugins.tiny
        from genbench.config import ExtractOptions
        from genbench.shards import compute_partial_stats
        from genbench.stats import shards
        part = compute_partial_stats({str(path)!r}, "1/3", ExtractOptions(extractor="test-tiny", progress=False))
        real = np.savez
        def dying(fh, **arrays):
            fh.write(b"PK\\x03\\x04" + b"x" * 5000)  # half a zip, then the process is killed
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        shards.np.savez = dying
        shards.save_partial({str(tmp_path / "part-1.npz")!r}, part)
    """)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr
    assert not (tmp_path / "part-1.npz").exists()
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".part-1.npz")]
    assert len(left) == 1
    save_partial(tmp_path / "part-0.npz", compute_partial_stats(str(path), "0/3", TINY))
    save_partial(tmp_path / "part-2.npz", compute_partial_stats(str(path), "2/3", TINY))
    with pytest.raises(ReferenceStatsError):
        merge_stats([tmp_path / "part-0.npz", left[0], tmp_path / "part-2.npz"])
    with pytest.raises(ReferenceStatsError, match=r"shard\(s\) 1/3 missing"):
        merge_stats(sorted(tmp_path.glob("part-*.npz")))


def test_bank_is_a_seeded_sample_of_rows_and_serves_kid(ten_thousand, tmp_path):
    path, features = ten_thousand
    parts = [compute_partial_stats(str(path), f"{k}/3", TINY, bank=500, seed=3) for k in range(3)]
    again = [compute_partial_stats(str(path), f"{k}/3", TINY, bank=500, seed=3) for k in range(3)]
    a, b = merge_stats(parts), merge_stats(again[::-1])
    assert a.bank_features is not None and a.bank_features.shape == (500, 16)
    assert np.array_equal(a.bank_features, b.bank_features)  # seeded, and independent of the order given
    assert a.bank_logits is not None and a.bank_logits.shape == (500, 5)
    rows = {r.tobytes() for r in features}
    assert all(r.tobytes() in rows for r in a.bank_features)  # real rows of the source
    assert len({r.tobytes() for r in a.bank_features}) == 500  # without replacement
    other = merge_stats([compute_partial_stats(str(path), f"{k}/3", TINY, bank=500, seed=4) for k in range(3)])
    assert not np.array_equal(other.bank_features, a.bank_features)
    with pytest.raises(ReferenceStatsError, match="bank_seed"):
        merge_stats([parts[0], parts[1], compute_partial_stats(str(path), "2/3", TINY, bank=500, seed=4)])
    stats_file = tmp_path / "ref.npz"
    merge_stats(parts, stats_file)
    import genbench

    gen = tmp_path / "gen.npy"
    np.save(gen, make_images(300, seed=9, shift=0.1))
    result = genbench.score(str(gen), str(stats_file), metrics=["fd", "kid"], kid_subset_size=200, kid_subsets=5)
    assert set(result.metrics) == {"fd_tiny", "kid_tiny"}
    assert result.provenance["inputs"]["reference"]["bank_rows"] == 500


def test_cli_stats_shard_and_merge(ten_thousand, tmp_path):
    path, features = ten_thousand
    runner = CliRunner()
    for k in range(3):
        done = runner.invoke(main, ["stats", str(path), "--shard", f"{k}/3", "-o", str(tmp_path / f"p{k}.npz"),
                                    "--extractor", "test-tiny", "-q", "--no-cache"])
        assert done.exit_code == 0, done.output
    done = runner.invoke(main, ["merge", *(str(tmp_path / f"p{k}.npz") for k in (2, 0, 1)), "-o",
                                str(tmp_path / "s.npz")])
    assert done.exit_code == 0, done.output
    assert "n=10000" in done.output
    mu, sigma = _one_pass(features)
    saved = load_stats(tmp_path / "s.npz")
    assert _rel(saved.stats.mean(), mu) < 1e-12 and _rel(saved.stats.cov(), sigma) < 1e-12
    done = runner.invoke(main, ["merge", str(tmp_path / "p0.npz"), str(tmp_path / "p2.npz"), "-o",
                                str(tmp_path / "t.npz")])
    assert done.exit_code == 2 and "1/3 missing" in done.output and not (tmp_path / "t.npz").exists()
    done = runner.invoke(main, ["stats", str(path), "--shard", "3/3", "-o", str(tmp_path / "x.npz")])
    assert done.exit_code == 2 and "--shard" in done.output
    done = runner.invoke(main, ["merge", str(tmp_path / "p0.npz"), "-o", str(tmp_path / "s.npz")])
    assert done.exit_code == 2 and "--overwrite" in done.output
    meta = json.loads(str(np.load(tmp_path / "p1.npz")["meta"]))
    assert meta["range"] == [3328, 6656] and meta["identity"]["shards"] == 3

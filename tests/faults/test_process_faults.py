"""Faults from outside: Ctrl-C and resume, SIGKILL mid-write, concurrent writers, read-only and full disks.

These run genbench as separate processes (``python -m genbench``) with the bundled fmnist-cnn network
on small generated inputs. Full and read-only disks use a small tmpfs, mounted where this process may
mount (root on Linux); elsewhere those cases are skipped with the reason.
"""
from __future__ import annotations

import json
import multiprocessing
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_images

FMNIST = ("--extractor", "fmnist-cnn")


def _gray(n: int, seed: int) -> np.ndarray:
    return make_images(n, seed=seed, size=28)


def _start(box, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "genbench", *map(str, args)], cwd=box.work,
                            env=box.process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# ----------------------------------------------------------------------------- tmpfs


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs at tmp_path/disk (unmounted afterwards); skipped where mounting is not allowed."""
    where = tmp_path / "disk"
    where.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not permitted'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(disk: Path) -> None:
    """Fill ``disk`` to the last byte."""
    for i, size in enumerate((1 << 16, 1 << 12, 1)):
        try:
            with open(disk / f"filler{i}", "wb") as fh:
                while True:
                    fh.write(b"\0" * size)
                    fh.flush()
        except OSError:
            pass


# ----------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_during_extraction_exits_130_and_a_rerun_resumes(sandbox):
    # The interrupt must land while the run is still going: extraction speed differs tenfold between an idle and
    # a loaded machine, so a run that finished first is repeated with four times the images (then skipped).
    for n in (15000, 60000):
        np.save(sandbox.path("big.npy"), _gray(n, seed=0))
        proc = _start(sandbox, "extract", "big.npy", "-o", "f.npz", *FMNIST, "--batch-size", "16")
        partial = sandbox.cache / "features" / "partial"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (partial.exists() and any(partial.rglob("*.npz"))):
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            break
        sandbox.path("f.npz").unlink()
        shutil.rmtree(sandbox.cache, ignore_errors=True)
    else:
        pytest.skip("extraction finished before it could be interrupted, twice")
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err and "interrupted" in err
    assert not sandbox.path("f.npz").exists()
    assert not [p for p in sandbox.work.iterdir() if p.name.startswith(".")], "a temporary file was left behind"
    sandbox.proc("extract", "big.npy", "-o", "f.npz", *FMNIST, code=0, outputs=("f.npz",), timeout=900)
    with np.load(sandbox.path("f.npz"), allow_pickle=False) as data:
        assert data["features"].shape[0] == n


# ----------------------------------------------------------------------------- SIGKILL mid-write


def test_sigkill_never_leaves_a_half_written_json(sandbox):
    np.save(sandbox.path("gen.npy"), _gray(200, seed=1))
    target = sandbox.path("result.json")
    target.write_text('{"old": true}\n')
    for delay in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0):
        proc = _start(sandbox, "score", "gen.npy", "--ref", "fashion-mnist:train", "--json", "result.json",
                      "--overwrite", "-q")
        time.sleep(delay)
        proc.kill()
        proc.communicate()
        text = target.read_text()
        doc = json.loads(text)  # either the old document or a whole new one, never a fragment
        assert doc == {"old": True} or "fd_fmnist" in doc["metrics"]
    leftovers = [p.name for p in sandbox.work.iterdir() if p.name.startswith(".")]
    assert len(leftovers) <= 1  # at most the temporary file of the one write a kill interrupted


def test_sigkill_during_history_writes_keeps_the_database_whole(sandbox):
    history = sandbox.path("h.sqlite")
    script = (
        "import sys, time\nfrom genbench.results.history import History\nh = History(sys.argv[1])\n"
        "doc = {'schema_version': 1, 'metrics': {'fd': {'value': 1.0}}, 'provenance': {'name': 'x'}}\n"
        "print('ready', flush=True)\nwhile True:\n    h.add(doc)\n"
    )
    for delay in (0.2, 0.5, 0.9):
        proc = subprocess.Popen([sys.executable, "-c", script, str(history)], env=sandbox.process_env(),
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.kill()
        proc.communicate()
    with sqlite3.connect(history) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    out = sandbox.proc("results", "list", "--history", "h.sqlite", code=0, outputs=("h.sqlite", "h.sqlite-wal",
                                                                                    "h.sqlite-shm"))
    assert out.stdout.strip()


def _add_many(path: str, count: int, tag: str) -> None:
    from genbench.results.history import History

    h = History(path)
    for i in range(count):
        h.add({"schema_version": 1, "metrics": {"fd": {"value": float(i)}}, "provenance": {"name": tag}})


def test_concurrent_history_writers_lose_nothing(sandbox):
    path = str(sandbox.path("h.sqlite"))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_many, args=(path, 15, f"w{i}")) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with sqlite3.connect(path) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM results")]
    assert sorted(names) == sorted(f"w{i}" for i in range(4) for _ in range(15))


# ----------------------------------------------------------------------------- full and read-only disks


@pytest.mark.parametrize("what", ["--json", "-o", "samples"])
def test_a_full_disk_is_exit_2_and_leaves_nothing_partial(sandbox, small_disk, what):
    np.save(sandbox.path("gen.npy"), _gray(50, seed=2))
    _fill(small_disk)
    before = sorted(p.name for p in small_disk.iterdir())
    target = small_disk / "out"
    if what == "--json":
        args = ("score", "gen.npy", "--ref", "fashion-mnist:train", "--json", f"{target}.json", "-q")
    elif what == "-o":
        args = ("extract", "gen.npy", "-o", f"{target}.npz", *FMNIST, "-q")
    else:
        args = ("baselines", "sample", "dcgan", "-n", "40", "-o", target)
    proc = subprocess.run([sys.executable, "-m", "genbench", *map(str, args)], cwd=sandbox.work,
                          env=sandbox.process_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "No space left" in proc.stderr
    assert sorted(p.name for p in small_disk.iterdir()) == before, "a partial output was left on the full disk"


def _score_with_cache(box, cache: Path, n: int, seed: int) -> subprocess.CompletedProcess:
    np.save(box.path("gen.npy"), _gray(n, seed=seed))
    env = {**box.process_env(), "GENBENCH_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "genbench", "score", "gen.npy", "--ref", "fashion-mnist:train",
                           "--json", "-", "-q"], cwd=box.work, env=env, capture_output=True, text=True, timeout=300)


def _assert_scored_without_cache(proc: subprocess.CompletedProcess, reason: str) -> None:
    """The score succeeds; the cache failure is one warning naming the cache and the reason."""
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "fd_fmnist" in json.loads(proc.stdout)["metrics"]
    assert "warning: feature cache" in proc.stderr and reason in proc.stderr and "going on without caching" in proc.stderr


def test_a_full_cache_does_not_fail_the_score(sandbox, small_disk):
    _fill(small_disk)
    _assert_scored_without_cache(_score_with_cache(sandbox, small_disk / "cache", 400, seed=3), "No space left")


def test_a_read_only_cache_does_not_fail_the_score(sandbox, small_disk):
    (small_disk / "cache").mkdir()
    done = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only ({done.stderr.strip()})")
    _assert_scored_without_cache(_score_with_cache(sandbox, small_disk / "cache", 100, seed=4), "Read-only")


# ----------------------------------------------------------------------------- tampered bundled statistics


def test_tampered_bundled_statistics_are_refused(sandbox, tmp_path):
    from genbench.stats.reference import bundled_dir

    copy = tmp_path / "bundled"
    shutil.copytree(bundled_dir(), copy)
    victim = next(copy.glob("*train*.npz"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    np.save(sandbox.path("gen.npy"), _gray(20, seed=5))
    sandbox.env["GENBENCH_REFERENCE_STATS"] = str(copy)
    sandbox.proc("score", "gen.npy", "--ref", "fashion-mnist:train", "-q", code=2, expect=("sha256", victim.name))


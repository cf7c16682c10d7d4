"""Faults from outside: Ctrl-C and resume, SIGKILL mid-write, concurrent writers, read-only and full disks.

These run genbench as separate processes (``python -m genbench``) with the bundled fmnist-cnn network
on small generated inputs. Full and read-only disks are tested twice: on a small tmpfs, mounted where this
process may mount (root on Linux; skipped elsewhere), and everywhere with the faults injected into the
genbench process by tests/faults/diskfaults.py (writes backed by /dev/full give the kernel's ENOSPC).
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
from dataclasses import dataclass
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


# ----------------------------------------------------------------------------- full and read-only disks


@dataclass
class Disk:
    """A folder that is (or will be made) a full or read-only disk, and how to run genbench against it.

    Route "tmpfs": a real 2 MiB tmpfs, mounted where this process may mount (root on Linux), else skipped.
    Route "injected": any folder; genbench runs under tests/faults/diskfaults.py, which backs the folder's
    written files by /dev/full (the kernel's own ENOSPC) or refuses writes there with EROFS. It runs everywhere.
    """

    route: str
    folder: Path
    state: str = "free"

    def make_full(self) -> None:
        if self.route == "tmpfs":
            _fill(self.folder)
        self.state = "full"

    def make_read_only(self) -> None:
        if self.route == "tmpfs":
            done = subprocess.run(["mount", "-o", "remount,ro", str(self.folder)], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"cannot remount the tmpfs read-only ({done.stderr.strip()})")
        self.state = "readonly"

    def genbench(self) -> list[str]:
        """The command line that runs genbench with this disk in its state."""
        if self.route == "injected" and self.state != "free":
            return [sys.executable, "-m", "tests.faults.diskfaults", self.state, str(self.folder)]
        return [sys.executable, "-m", "genbench"]


@pytest.fixture(params=["tmpfs", "injected"])
def small_disk(request, tmp_path):
    where = tmp_path / "disk"
    where.mkdir()
    if request.param == "injected":
        yield Disk("injected", where)
        return
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine (the injected route covers the case)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not permitted'}; the injected route covers "
                    "the case)")
    try:
        yield Disk("tmpfs", where)
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

OLD = '{"old": true}\n'
NEW = json.dumps({"new": list(range(20000))}) + "\n"  # 129 KB: a half-written copy is not valid JSON

# A child that writes NEW onto argv[1] with genbench.util.atomic and stops at a chosen moment (printing "stopped"),
# to be killed there: "mid-write" stops half way through the bytes (a slow writer), "before-rename" after every
# byte was written and flushed but before os.replace puts the file in place.
_ATOMIC_CHILD = r"""
import json, os, pathlib, sys, time
from genbench.util.atomic import atomic_path, write_text_atomic
target, how = sys.argv[1], sys.argv[2]
new = json.dumps({"new": list(range(20000))}) + "\n"  # NEW

def stop():
    print("stopped", flush=True)
    time.sleep(600)

def half_then_stop(self, data, *args, **kwargs):
    with open(self, "w") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        os.fsync(fh.fileno())
        stop()

if how == "mid-write":
    pathlib.Path.write_text = half_then_stop
    write_text_atomic(target, new)
elif how == "mid-write-atomic-path":
    with atomic_path(target) as tmp, open(tmp, "w") as fh:
        fh.write(new[: len(new) // 2])
        fh.flush()
        stop()
elif how == "before-rename":
    os.replace = lambda *paths: stop()
    write_text_atomic(target, new)
"""


def _kill_when_stopped(proc: subprocess.Popen) -> None:
    seen = []
    for line in proc.stdout:  # whatever the command prints first, then the child's "stopped"
        if line.strip() == "stopped":
            break
        seen.append(line)
    else:  # the child ended without reaching the stop: not the moment this test is about
        out, err = proc.communicate(timeout=60)
        raise AssertionError(f"the child never stopped where it should (exit {proc.returncode}):\n{seen}{out}{err}")
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("how", ["mid-write", "mid-write-atomic-path", "before-rename"])
def test_sigkill_inside_an_atomic_write_leaves_the_old_file_whole(sandbox, how):
    target = sandbox.path("result.json")
    target.write_text(OLD)
    proc = subprocess.Popen([sys.executable, "-c", _ATOMIC_CHILD, str(target), how], cwd=sandbox.work,
                            env=sandbox.process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _kill_when_stopped(proc)
    assert target.read_text() == OLD  # the old document, byte for byte
    # The kill landed inside the write: the temporary file beside the target holds what was written so far.
    (tmp,) = [p for p in sandbox.work.iterdir() if p.name != "result.json"]
    assert tmp.name.startswith(".result.json.") and tmp.name.endswith(".tmp.json")
    written = NEW if how == "before-rename" else NEW[: len(NEW) // 2]
    assert tmp.read_text() == written


# The CLI's --json goes through the same atomic write: genbench score with Path.write_text replaced by a writer
# that stops half way (a write that is not atomic would leave the half document in result.json itself).
_CLI_CHILD = r"""
import os, pathlib, runpy, sys, time

def half_then_stop(self, data, *args, **kwargs):
    with open(self, "w") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        print("stopped", flush=True)
        time.sleep(600)

pathlib.Path.write_text = half_then_stop
sys.argv = ["genbench", *sys.argv[1:]]
runpy.run_module("genbench", run_name="__main__", alter_sys=True)
"""


def test_sigkill_while_the_cli_writes_its_json_keeps_the_old_file(sandbox):
    np.save(sandbox.path("gen.npy"), _gray(50, seed=1))
    target = sandbox.path("result.json")
    target.write_text(OLD)
    proc = subprocess.Popen([sys.executable, "-c", _CLI_CHILD, "score", "gen.npy", "--ref", "fashion-mnist:train",
                             "--json", "result.json", "--overwrite", "-q"], cwd=sandbox.work,
                            env=sandbox.process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _kill_when_stopped(proc)
    assert target.read_text() == OLD
    leftovers = [p for p in sandbox.work.iterdir() if p.name.startswith(".")]
    assert len(leftovers) == 1 and json.loads(OLD) == {"old": True}
    with pytest.raises(json.JSONDecodeError):  # the interrupted write really was half a document
        json.loads(leftovers[0].read_text())


def test_sigkill_during_history_writes_keeps_the_database_whole(sandbox):
    history = sandbox.path("h.sqlite")
    script = (
        "import sys, time\nfrom genbench.results.history import History\nh = History(sys.argv[1])\n"
        "doc = {'schema_version': 1, 'metrics': {'fd': {'value': 1.0}}, 'provenance': {'name': 'x'}}\n"
        "i = 0\nwhile True:\n    h.add(doc)\n    i += 1\n    print(i, flush=True)\n"
    )
    total = 0
    for count in (3, 10, 25):  # killed after that many more records, mid-way through the next one
        proc = subprocess.Popen([sys.executable, "-c", script, str(history)], env=sandbox.process_env(),
                                stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:
            if int(line) == count:
                break
        proc.kill()
        proc.communicate()
        total += count
    with sqlite3.connect(history) as conn:
        kept = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert total <= kept <= total + 3  # every reported record, and at most the one each kill interrupted
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
    small_disk.make_full()
    folder = small_disk.folder
    before = sorted(p.name for p in folder.iterdir())
    target = folder / "out"
    if what == "--json":
        args = ("score", "gen.npy", "--ref", "fashion-mnist:train", "--json", f"{target}.json", "-q")
    elif what == "-o":
        args = ("extract", "gen.npy", "-o", f"{target}.npz", *FMNIST, "-q")
    else:
        args = ("baselines", "sample", "dcgan", "-n", "40", "-o", target)
    proc = subprocess.run([*small_disk.genbench(), *map(str, args)], cwd=sandbox.work,
                          env=sandbox.process_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "No space left" in proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == before, "a partial output was left on the full disk"


def _score_with_cache(box, disk: Disk, n: int, seed: int) -> subprocess.CompletedProcess:
    np.save(box.path("gen.npy"), _gray(n, seed=seed))
    env = {**box.process_env(), "GENBENCH_CACHE": str(disk.folder / "cache")}
    return subprocess.run([*disk.genbench(), "score", "gen.npy", "--ref", "fashion-mnist:train",
                           "--json", "-", "-q"], cwd=box.work, env=env, capture_output=True, text=True, timeout=300)


def _assert_scored_without_cache(proc: subprocess.CompletedProcess, reason: str) -> None:
    """The score succeeds; the cache failure is one warning naming the cache and the reason."""
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "fd_fmnist" in json.loads(proc.stdout)["metrics"]
    assert "warning: feature cache" in proc.stderr and reason in proc.stderr and "going on without caching" in proc.stderr


def test_a_full_cache_does_not_fail_the_score(sandbox, small_disk):
    small_disk.make_full()
    _assert_scored_without_cache(_score_with_cache(sandbox, small_disk, 400, seed=3), "No space left")


def test_a_read_only_cache_does_not_fail_the_score(sandbox, small_disk):
    (small_disk.folder / "cache").mkdir()
    small_disk.make_read_only()
    _assert_scored_without_cache(_score_with_cache(sandbox, small_disk, 100, seed=4), "Read-only")


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


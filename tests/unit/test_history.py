"""The SQLite results history: round trips, filters, exports, concurrent writers, a killed writer."""
from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import time

import numpy as np
import pytest

from genbench.errors import ConfigError, InputError
from genbench.results.history import History, git_commit, open_history, parse_record_ref, stamp_result, to_pandas

FORK = multiprocessing.get_context("fork")


def doc(value: float, name: str | None = None, metrics: int = 2, seq: int = 0) -> dict:
    out = {
        "metrics": {f"fd_m{i}": {"value": value + i, "ci95": [value + i - 0.5, value + i + 0.5]} for i in range(metrics)},
        "provenance": {"extractor": "test-tiny", "seed": seq, "inputs": {"generated": {"n": 100}, "reference": {"reference_id": "r", "n": 50}}},
    }
    out["metrics"]["is_x"] = {"mean": 3.0, "std": 0.25}
    if name:
        out["provenance"]["name"] = name
    return out


def test_add_get_list_filter_and_export(tmp_path):
    h = History(tmp_path / "sub" / "h.sqlite")
    a = h.add(doc(1.0, "dcgan"))
    b = h.add(doc(2.0), name="vae")
    c = h.add(doc(3.0, "dcgan"), kind="probe")
    assert (a, b, c) == (1, 2, 3) and len(h) == 3
    rec = h.get(b)
    assert rec.name == "vae" and rec.value("fd_m0") == 2.0 and rec.value("is_x") == 3.0
    assert rec.document == doc(2.0)
    assert [r.id for r in h.records(name="dcgan")] == [1, 3]
    assert h.latest().id == 3 and h.latest("vae").id == 2 and h.get(3).kind == "probe"
    with pytest.raises(InputError, match="no record with id 9"):
        h.get(9)
    with pytest.raises(InputError, match="named 'gan'"):
        h.latest("gan")
    rows = list(csv.DictReader(io.StringIO(h.export_csv(name="dcgan"))))
    assert len(rows) == 2 * 3 and {r["id"] for r in rows} == {"1", "3"}
    first = next(r for r in rows if r["id"] == "1" and r["metric"] == "fd_m1")
    assert float(first["value"]) == 2.0 and float(first["ci95_low"]) == 1.5 and first["reference"] == "r"
    assert json.loads(h.export_json())[1] == {"history_id": 2, **doc(2.0)}
    frame = h.to_pandas()
    assert len(frame) == 9 and frame.loc[frame.metric == "is_x", "std"].tolist() == [0.25] * 3
    assert str(frame["created_at"].dt.tz) == "UTC"
    h.delete(2)
    assert [r.id for r in h.records()] == [1, 3]
    assert h.integrity_check() == "ok"
    # The metric rows are queryable with plain SQL.
    with sqlite3.connect(h.path) as conn:
        assert conn.execute("SELECT value FROM metrics WHERE result_id = 3 AND metric = 'fd_m0'").fetchone() == (3.0,)
        assert conn.execute("SELECT COUNT(*) FROM metrics WHERE result_id = 2").fetchone() == (0,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_path_from_environment_and_bad_files(tmp_path, monkeypatch):
    monkeypatch.delenv("GENBENCH_HISTORY", raising=False)
    with pytest.raises(ConfigError, match="GENBENCH_HISTORY"):
        open_history(None)
    assert open_history(None, required=False) is None
    monkeypatch.setenv("GENBENCH_HISTORY", str(tmp_path / "env.sqlite"))
    open_history(None).add(doc(1.0))
    assert len(to_pandas()) == 3
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(InputError, match="junk.sqlite"):
        History(junk)
    with pytest.raises(InputError, match="is a folder"):
        History(tmp_path)
    with pytest.raises(InputError, match="'metrics'"):
        History(tmp_path / "x.sqlite").add({"provenance": {}})


def test_record_refs_and_provenance_stamp(tmp_path):
    assert parse_record_ref("12") == 12 and parse_record_ref("latest") == ("latest", None)
    assert parse_record_ref("latest:dcgan") == ("latest", "dcgan") and parse_record_ref("base.json") is None
    d = {"metrics": {}, "provenance": {}}
    stamp_result(d, name="run-1", project_dir=tmp_path)  # not a git checkout
    assert d["provenance"]["git_commit"] is None and d["provenance"]["name"] == "run-1"
    assert d["provenance"]["created_at"].endswith("Z")


def test_git_commit_of_a_repository_and_without_git(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    assert git_commit(repo) is None  # no commit yet
    (repo / "f").write_text("x")
    subprocess.run(["git", "add", "f"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "m"], cwd=repo, check=True, env=env)
    expected = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    assert git_commit(repo) == expected
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git executable at all
    assert git_commit(repo) is None


# ----------------------------------------------------------------------------- several processes


def _writer(path: str, name: str, count: int, barrier) -> None:
    barrier.wait()
    h = History(path)
    for seq in range(count):
        h.add(doc(float(seq), name, metrics=5, seq=seq))


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.sqlite")  # fresh: the writers also race to create the schema
    writers, count = 4, 15
    barrier = FORK.Barrier(writers)
    procs = [FORK.Process(target=_writer, args=(path, f"w{i}", count, barrier)) for i in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    h = History(path)
    records = h.records()
    assert len(records) == writers * count
    assert sorted(r.id for r in records) == list(range(1, writers * count + 1))
    for i in range(writers):
        seqs = sorted(r.provenance["seed"] for r in h.records(name=f"w{i}"))
        assert seqs == list(range(count))
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone() == (writers * count * 6,)
    assert h.integrity_check() == "ok"


def _stuck_writer(path: str, ready) -> None:
    h = History(path)
    with h._transaction() as conn:
        History._insert(conn, doc(99.0, "partial"), "partial", "score")
        ready.set()
        time.sleep(60)  # killed here, mid-transaction


def test_writer_killed_mid_transaction_loses_only_its_own_record(tmp_path):
    path = tmp_path / "h.sqlite"
    h = History(path)
    ids = [h.add(doc(float(i), "kept")) for i in range(3)]
    ready = FORK.Event()
    proc = FORK.Process(target=_stuck_writer, args=(str(path), ready))
    proc.start()
    assert ready.wait(timeout=30)
    # WAL: readers are not blocked by the open write transaction and do not see it.
    assert [r.id for r in h.records()] == ids
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL
    after = History(path)
    assert [r.id for r in after.records()] == ids and after.records(name="partial") == []
    assert after.integrity_check() == "ok"
    assert after.add(doc(5.0, "next")) == ids[-1] + 1  # the killed insert left no trace, not even its id


def _busy_writer(path: str, written) -> None:
    h = History(path)
    seq = 0
    while True:
        h.add(doc(float(seq), "loop", metrics=20, seq=seq))
        seq += 1
        if seq == 5:
            written.set()  # five records are in; the writer goes on until it is killed


@pytest.mark.parametrize("jitter_ms", [0.0, *np.random.default_rng(8).uniform(0, 20, size=5).round(2)])
def test_writer_killed_at_a_random_moment_leaves_only_complete_records(tmp_path, jitter_ms):
    """Killed once it has written 5 records (an event, not a sleep), after a seeded extra delay that moves the
    kill to other points inside the next records; whatever the moment, only whole records remain."""
    path = tmp_path / "h.sqlite"
    History(path).add(doc(0.0, "first"))
    written = FORK.Event()
    proc = FORK.Process(target=_busy_writer, args=(str(path), written))
    proc.start()
    assert written.wait(timeout=60)
    time.sleep(jitter_ms / 1000)  # where the kill lands; the assertions below hold for any value
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=30)
    h = History(path)
    assert h.integrity_check() == "ok"
    records = h.records()
    assert records[0].name == "first" and len(records) >= 6
    assert [r.provenance["seed"] for r in records[1:]] == list(range(len(records) - 1))  # no gaps, no torn record
    with sqlite3.connect(path) as conn:
        counts = dict(conn.execute("SELECT result_id, COUNT(*) FROM metrics GROUP BY result_id").fetchall())
    assert all(counts.get(r.id) == len(r.metrics) for r in records)


def _opener(path: str, barrier) -> None:
    barrier.wait()
    History(path)


def test_processes_racing_to_create_a_history_all_open_it(tmp_path):
    """Switching a new database to WAL is refused at once ("database is locked", no busy handler) while
    another process holds it; History retries until its timeout instead of failing."""
    for round_ in range(15):
        path = str(tmp_path / f"new{round_}.sqlite")
        barrier = FORK.Barrier(6)
        procs = [FORK.Process(target=_opener, args=(path, barrier)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
        assert [p.exitcode for p in procs] == [0] * 6, f"round {round_}"

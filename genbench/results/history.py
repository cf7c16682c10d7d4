"""A results history: result documents kept in an embedded SQLite database at a path the user chooses.

    >>> from genbench.results.history import History
    >>> h = History("results.sqlite")
    >>> record_id = h.add(result, name="dcgan-main")      # one transaction
    >>> h.records(name="dcgan-main")[-1].value("fd_fmnist")
    >>> genbench.results.history.to_pandas("results.sqlite")          # one row per (record, metric)

The path comes from ``--history PATH`` or the ``GENBENCH_HISTORY`` environment variable.
The database runs in WAL mode with a busy timeout, and each record (its document and its
metric rows) is written in one ``BEGIN IMMEDIATE`` transaction, so several processes may write
at once and a writer that dies mid-transaction loses only its own record, never earlier ones.
WAL needs a local file system (not NFS or other network shares).

Tables: ``results`` (id, created_at, name, kind, extractor, git_commit, document = the full
JSON result), ``metrics`` (result_id, metric, value, std, ci95_low, ci95_high) for SQL queries,
and ``meta`` (schema_version).

Also here: :func:`git_commit` and :func:`run_stamp`, the run facts recorded in provenance.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, overload

from ..errors import ConfigError, InputError

ENV_VAR = "GENBENCH_HISTORY"
SCHEMA_VERSION = 1
DEFAULT_TIMEOUT_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    name TEXT,
    kind TEXT NOT NULL,
    extractor TEXT,
    git_commit TEXT,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_name ON results (name, id);
CREATE TABLE IF NOT EXISTS metrics (
    result_id INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    value REAL,
    std REAL,
    ci95_low REAL,
    ci95_high REAL,
    PRIMARY KEY (result_id, metric)
);
"""

#: Columns of the long-format export (CSV, pandas): one row per (record, metric).
EXPORT_COLUMNS = (
    "id", "created_at", "name", "kind", "git_commit", "extractor", "preprocessing", "reference", "n_generated",
    "seed", "metric", "value", "std", "ci95_low", "ci95_high",
)


# ----------------------------------------------------------------------------- provenance facts


def git_commit(directory: str | os.PathLike | None = None) -> str | None:
    """``git rev-parse HEAD`` in ``directory`` (default: the current one); None when git, the
    repository or the commit is not there. Never raises for a missing git."""
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
            cwd=None if directory is None else str(directory),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = proc.stdout.strip()
    return commit if proc.returncode == 0 and len(commit) in (40, 64) else None


def utc_now() -> str:
    """The current time as ISO 8601 UTC, seconds precision (``2025-01-31T12:00:00Z``)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def run_stamp(directory: str | os.PathLike | None = None) -> dict:
    """``{"created_at": ..., "git_commit": ...}`` for a result's provenance."""
    return {"created_at": utc_now(), "git_commit": git_commit(directory)}


def stamp_result(result: Any, name: str | None = None, project_dir: str | os.PathLike | None = None) -> None:
    """Complete a result's provenance in place: ``created_at`` and ``git_commit`` where missing
    (``git_commit`` of ``project_dir`` when given), and the run ``name`` when given."""
    prov = result.provenance if hasattr(result, "provenance") else result.setdefault("provenance", {})
    if project_dir is not None:
        prov["git_commit"] = git_commit(project_dir)
    if "created_at" not in prov:
        prov["created_at"] = utc_now()
    if "git_commit" not in prov:
        prov["git_commit"] = git_commit()
    if name is not None:
        prov["name"] = name


def probe_document(report: dict) -> dict:
    """A probe's JSON report as a history document.

    Its top-level numbers (``ct``, ``memorized_fraction``, ``modes_covered``, ``kl_to_uniform``, ...)
    become ``metrics`` entries ``{"value": x}`` so that ``genbench results`` and ``genbench check``
    read them like scores; the whole report is kept under ``report``.
    """
    metrics = {key: {"value": float(value)} for key, value in report.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
    provenance = dict(report.get("provenance") or {})
    stamp_result({"provenance": provenance})
    doc = {"kind": "probe", "probe": report.get("probe"), "metrics": metrics, "report": report,
           "provenance": provenance}
    if "verdict" in report:
        doc["verdict"] = report["verdict"]
    return doc


def history_path(option: str | os.PathLike | None) -> Path | None:
    """The history file: the option when given, else $GENBENCH_HISTORY, else None."""
    value = option if option else os.environ.get(ENV_VAR)
    return Path(value) if value else None


# ----------------------------------------------------------------------------- records


def _headline(entry: dict) -> float | None:
    for key in ("value", "mean"):
        if isinstance(entry.get(key), (int, float)):
            return float(entry[key])
    return None


@dataclass(frozen=True)
class Record:
    """One stored result: its id, when and under which name it was stored, and the full document."""

    id: int
    created_at: str
    name: str | None
    kind: str
    extractor: str | None
    git_commit: str | None
    document: dict

    @property
    def metrics(self) -> dict[str, dict]:
        return self.document.get("metrics", {})

    @property
    def provenance(self) -> dict:
        return self.document.get("provenance", {})

    def value(self, metric: str) -> float:
        """The headline number (``value`` or ``mean``) of ``metric``; KeyError when absent."""
        value = _headline(self.metrics[metric])
        if value is None:
            raise KeyError(metric)
        return value

    def rows(self) -> list[dict]:
        """Long format: one dict per metric with the columns of :data:`EXPORT_COLUMNS`."""
        prov = self.provenance
        inputs = prov.get("inputs") or {}
        ref = inputs.get("reference") or {}
        common = {
            "id": self.id,
            "created_at": self.created_at,
            "name": self.name,
            "kind": self.kind,
            "git_commit": self.git_commit,
            "extractor": self.extractor,
            "preprocessing": prov.get("preprocessing"),
            "reference": ref.get("reference_id") or ref.get("location"),
            "n_generated": (inputs.get("generated") or {}).get("n"),
            "seed": prov.get("seed"),
        }
        out = []
        for metric, entry in self.metrics.items():
            ci = entry.get("ci95") or (None, None)
            out.append({**common, "metric": metric, "value": _headline(entry), "std": entry.get("std"),
                        "ci95_low": ci[0], "ci95_high": ci[1]})
        return out

    def to_dict(self) -> dict:
        """The stored document with its history id."""
        return {"history_id": self.id, **self.document}


def _as_document(result: Any) -> dict:
    doc = result.to_dict() if hasattr(result, "to_dict") else result
    if not isinstance(doc, dict) or not isinstance(doc.get("metrics"), dict):
        raise InputError(f"a history record must be a result document with a 'metrics' object, got {type(doc).__name__}")
    return json.loads(json.dumps(doc, allow_nan=True))  # a deep copy that is known to serialise


# ----------------------------------------------------------------------------- the database


class History:
    """The SQLite results history at ``path`` (created with its folder when missing).

    Raises InputError when ``path`` exists but is not a genbench history database.
    Each method opens its own short-lived connection, so an instance is safe to use across
    fork() and from several processes.
    """

    def __init__(self, path: str | os.PathLike, timeout: float = DEFAULT_TIMEOUT_S, create: bool = True) -> None:
        self.path = Path(path)
        self.timeout = timeout
        if self.path.is_dir():
            raise InputError(f"--history {self.path}: is a folder; expected a database file path")
        if not create and not self.path.is_file():
            raise InputError(f"--history {self.path}: no such results history (only commands that record results "
                             "create one: score --history, check --record, leaderboard --history)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._init_schema()

    # -- connections and transactions

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            mode = self._switch_to_wal(conn)
            if str(mode).lower() != "wal":
                raise InputError(f"--history {self.path}: SQLite could not switch to WAL mode (got {mode!r})")
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            hint = f" (waited {self.timeout:g} s for other writers)" if busy else ""
            raise InputError(f"--history {self.path}: {exc}{hint}") from None
        except sqlite3.DatabaseError as exc:
            raise InputError(f"--history {self.path}: not a usable SQLite history database ({exc})") from None
        finally:
            conn.close()

    def _switch_to_wal(self, conn: sqlite3.Connection) -> str:
        """``PRAGMA journal_mode = WAL``, retried until the timeout while other connections hold the file.

        SQLite answers "database is locked" at once, without the busy handler, when processes race to
        switch a new database to WAL; once the file is in WAL mode the pragma needs no lock.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception): all or nothing."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _init_schema(self) -> None:
        with self._transaction() as conn:
            # one statement at a time: executescript() would commit the open transaction
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            found = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise InputError(
                f"--history {self.path}: schema version {found} is newer than this genbench understands ({SCHEMA_VERSION}); "
                "upgrade genbench"
            )

    # -- writing

    def add(self, result: Any, name: str | None = None, kind: str = "score") -> int:
        """Store a ScoreResult (or its dict) in one transaction; returns the new record id.

        ``name`` defaults to the document's ``provenance.name``; ``kind`` says what produced it
        (score, probe, leaderboard, ...).
        """
        doc = _as_document(result)
        prov = doc.get("provenance") or {}
        name = name if name is not None else prov.get("name")
        with self._transaction() as conn:
            return self._insert(conn, doc, name, kind)

    @staticmethod
    def _insert(conn: sqlite3.Connection, doc: dict, name: str | None, kind: str) -> int:
        prov = doc.get("provenance") or {}
        created = prov.get("created_at") or utc_now()
        cur = conn.execute(
            "INSERT INTO results (created_at, name, kind, extractor, git_commit, document) VALUES (?, ?, ?, ?, ?, ?)",
            (created, name, kind, prov.get("extractor"), prov.get("git_commit"), json.dumps(doc)),
        )
        assert cur.lastrowid is not None  # an INSERT sets it
        record_id = int(cur.lastrowid)
        for metric, entry in doc["metrics"].items():
            if not isinstance(entry, dict):
                continue
            ci = entry.get("ci95") or (None, None)
            std = entry.get("std") if isinstance(entry.get("std"), (int, float)) else None
            conn.execute(
                "INSERT INTO metrics (result_id, metric, value, std, ci95_low, ci95_high) VALUES (?, ?, ?, ?, ?, ?)",
                (record_id, metric, _headline(entry), std, ci[0], ci[1]),
            )
        return record_id

    def delete(self, record_id: int) -> None:
        """Remove one record (and its metric rows); InputError when there is none with that id."""
        with self._transaction() as conn:
            if conn.execute("DELETE FROM results WHERE id = ?", (int(record_id),)).rowcount == 0:
                raise InputError(f"history {self.path}: no record with id {record_id}")

    # -- reading

    @staticmethod
    def _record(row: tuple) -> Record:
        return Record(int(row[0]), row[1], row[2], row[3], row[4], row[5], json.loads(row[6]))

    _COLUMNS = "id, created_at, name, kind, extractor, git_commit, document"

    def get(self, record_id: int) -> Record:
        """The record ``record_id``; InputError naming the history when it does not exist."""
        with self._connect() as conn:
            row = conn.execute(f"SELECT {self._COLUMNS} FROM results WHERE id = ?", (int(record_id),)).fetchone()
        if row is None:
            raise InputError(f"history {self.path}: no record with id {record_id} (see `genbench results list`)")
        return self._record(row)

    def latest(self, name: str | None = None) -> Record:
        """The newest record (with ``name``, when given); InputError when there is none."""
        records = self.records(name=name, limit=1, newest_first=True)
        if not records:
            what = f" named {name!r}" if name else ""
            raise InputError(f"history {self.path}: no record{what}")
        return records[0]

    def records(self, name: str | None = None, limit: int | None = None, newest_first: bool = False) -> list[Record]:
        """Records in id order (oldest first unless ``newest_first``), optionally only those named ``name``."""
        sql = f"SELECT {self._COLUMNS} FROM results"
        args: list = []
        if name is not None:
            sql += " WHERE name = ?"
            args.append(name)
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [self._record(r) for r in rows]

    def __len__(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound database."""
        with self._connect() as conn:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])

    # -- export

    def rows(self, name: str | None = None) -> list[dict]:
        """Long format: one dict per (record, metric) with the columns of :data:`EXPORT_COLUMNS`."""
        return [row for record in self.records(name=name) for row in record.rows()]

    def export_csv(self, name: str | None = None) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows(name))
        return buffer.getvalue()

    def export_json(self, name: str | None = None) -> str:
        """A JSON list of the stored documents, each with its ``history_id``."""
        return json.dumps([r.to_dict() for r in self.records(name=name)], indent=2)

    def to_pandas(self, name: str | None = None):
        """A pandas DataFrame in long format (see :meth:`rows`); ``created_at`` parsed as UTC datetimes."""
        import pandas as pd

        frame = pd.DataFrame(self.rows(name), columns=list(EXPORT_COLUMNS))
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        return frame


@overload
def open_history(option: str | os.PathLike | None, required: Literal[True] = True, flag: str = "--history",
                 create: bool = True) -> History: ...


@overload
def open_history(option: str | os.PathLike | None, required: bool, flag: str = "--history",
                 create: bool = True) -> History | None: ...


def open_history(option: str | os.PathLike | None, required: bool = True, flag: str = "--history",
                 create: bool = True) -> History | None:
    """The History named by ``option`` or $GENBENCH_HISTORY; ConfigError when required and neither is set.

    ``create=False`` (readers) refuses a path where no history exists instead of creating an empty one.
    """
    path = history_path(option)
    if path is None:
        if required:
            raise ConfigError(f"no results history: pass {flag} PATH or set {ENV_VAR}")
        return None
    return History(path, create=create)


def to_pandas(path: str | os.PathLike | None = None, name: str | None = None):
    """The history at ``path`` (default $GENBENCH_HISTORY) as a long-format DataFrame."""
    history = open_history(path, flag="path", create=False)
    return history.to_pandas(name)


def parse_record_ref(text: str) -> int | tuple[str, str | None] | None:
    """``"12"`` -> 12; ``"latest"`` / ``"latest:NAME"`` -> ("latest", NAME or None); anything else -> None."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text == "latest" or text.startswith("latest:"):
        name = text.partition(":")[2] or None
        return ("latest", name)
    return None

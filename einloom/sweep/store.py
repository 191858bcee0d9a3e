"""The result store: one SQLite file (``sweep.db``) in the sweep's output folder.

Table ``points`` has one row per point, keyed by the point's content hash (its PRIMARY KEY, so a
point can never be stored twice): its plain-data description, its status (``done``, ``failed``,
``pruned``), its result or its error, the run that produced it, the seconds it took and the worker
that evaluated it.  A point is written in its own transaction the moment its result arrives, so an
interrupted sweep (Ctrl-C, a killed worker, a lost machine) keeps every finished point and the next
run evaluates only the points the store does not have (``failed`` points are retried only on request).
Table ``runs`` records each run (executor, start, end, pid, host) for ``einloom sweep --status``;
table ``meta`` holds the sweep file as data and the number of points it enumerates.

The database runs in WAL mode so ``--status`` and reports can read while a sweep writes.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from einloom.sweep.errors import SweepError

DB_NAME = "sweep.db"
SCHEMA_VERSION = 1
STATUSES = ("done", "failed", "pruned")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL, ended REAL, heartbeat REAL,
    pid INTEGER, host TEXT, executor TEXT, planned INTEGER, outcome TEXT);
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY, idx INTEGER NOT NULL, status TEXT NOT NULL,
    spec TEXT NOT NULL, result TEXT, error TEXT,
    run INTEGER, seconds REAL, worker TEXT, finished REAL NOT NULL);
CREATE INDEX IF NOT EXISTS points_status ON points(status);
"""


class Store:
    """An open sweep database (use as a context manager, or call :meth:`close`)."""

    def __init__(self, directory: str | Path, *, create: bool = False):
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        try:
            present = self.path.is_file()
        except OSError as exc:                  # a name too long, a path through a file...
            raise SweepError(f"{self.directory}: cannot use this folder ({exc.strerror or exc})",
                             hint="give the output folder of an 'einloom sweep' run") from None
        if not present:
            if not create:
                raise SweepError(f"{self.directory} holds no sweep results ({DB_NAME} not found)",
                                 hint="give the output folder of an 'einloom sweep' run")
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SweepError(f"cannot create the output folder {self.directory}: {exc.strerror or exc}",
                                 hint="give a writable folder with -o / output:") from None
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise SweepError(f"{self.path}: not a usable sweep database ({exc})",
                             hint="delete it to start the sweep afresh") from None
        version = self.meta("schema_version")
        if version is None and create:
            self.set_meta("schema_version", SCHEMA_VERSION)
        elif version is not None and version != SCHEMA_VERSION:
            raise SweepError(f"{self.path}: store schema {version}, this einloom reads {SCHEMA_VERSION}",
                             hint="regenerate the sweep in a new output folder")

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    # -- meta ---------------------------------------------------------------------------------------
    def meta(self, name: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, name: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)", (name, json.dumps(value)))

    # -- runs ---------------------------------------------------------------------------------------
    def begin_run(self, executor: str, planned: int) -> int:
        now = time.time()
        cur = self.db.execute("INSERT INTO runs(started, heartbeat, pid, host, executor, planned) "
                              "VALUES (?, ?, ?, ?, ?, ?)", (now, now, os.getpid(), socket.gethostname(), executor,
                                                            planned))
        return int(cur.lastrowid)

    def heartbeat(self, run: int) -> None:
        self.db.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), run))

    def end_run(self, run: int, outcome: str) -> None:
        self.db.execute("UPDATE runs SET ended = ?, outcome = ? WHERE id = ?", (time.time(), outcome, run))

    def runs(self) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT id, started, ended, heartbeat, pid, host, executor, planned, outcome "
                              "FROM runs ORDER BY id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    # -- points -------------------------------------------------------------------------------------
    def put(self, spec: Mapping[str, Any], status: str, *, result: Any = None, error: str | None = None,
            run: int | None = None, seconds: float | None = None, worker: str | None = None) -> None:
        """Store one point's outcome (replacing an earlier ``failed`` row when a failure is retried)."""
        if status not in STATUSES:
            raise ValueError(status)
        self.db.execute(
            "INSERT OR REPLACE INTO points(key, idx, status, spec, result, error, run, seconds, worker, finished) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (spec["key"], int(spec["index"]), status, json.dumps(_slim(spec)),
             None if result is None else json.dumps(result), error, run, seconds, worker, time.time()))

    def put_many(self, rows: Iterable[tuple[Mapping[str, Any], str, str | None]], run: int | None = None) -> None:
        """Store ``(spec, status, error)`` rows without results (pruned or invalid points) in one transaction."""
        with transaction(self.db):
            for spec, status, error in rows:
                self.put(spec, status, error=error, run=run, seconds=0.0)

    def statuses(self) -> dict[str, str]:
        """``{key: status}`` of every stored point."""
        return dict(self.db.execute("SELECT key, status FROM points").fetchall())

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        out.update(dict(self.db.execute("SELECT status, COUNT(*) FROM points GROUP BY status").fetchall()))
        return out

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every stored point, sorted by key (the order is the same whichever executor filled the store)."""
        cur = self.db.execute("SELECT key, idx, status, spec, result, error, run, seconds, worker, finished "
                              "FROM points ORDER BY key")
        for key, idx, status, spec, result, error, run, seconds, worker, finished in cur:
            yield {"key": key, "index": idx, "status": status, "spec": json.loads(spec),
                   "result": None if result is None else json.loads(result), "error": error, "run": run,
                   "seconds": seconds, "worker": worker, "finished": finished}

    def finished_times(self, run: int | None = None) -> list[float]:
        query = "SELECT finished FROM points WHERE status != 'pruned'"
        args: tuple[Any, ...] = ()
        if run is not None:
            query += " AND run = ?"
            args = (run,)
        return sorted(r[0] for r in self.db.execute(query + " ORDER BY finished", args).fetchall())


def _slim(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec without what is only needed to evaluate (the architecture document is kept: reports show it)."""
    return {k: v for k, v in spec.items() if k not in ("key",)}


class transaction:
    """``with transaction(db):`` one BEGIN ... COMMIT (ROLLBACK on an exception)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN")

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def open_existing(directory: str | Path) -> Store:
    """Open the store of an existing sweep output folder (a clear error when there is none)."""
    return Store(directory, create=False)


def is_running(run: Mapping[str, Any], *, stale_after_s: float = 120.0) -> bool:
    """Whether ``run`` still seems alive: not ended, and its process exists (same host) or its
    heartbeat is recent (another host)."""
    if run.get("ended") is not None:
        return False
    if run.get("host") == socket.gethostname() and run.get("pid"):
        try:
            os.kill(int(run["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return time.time() - float(run.get("heartbeat") or 0) < stale_after_s


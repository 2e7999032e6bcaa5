"""Learner memory: how many times each learner has made each kind of mistake, in SQLite so it survives restarts.

One connection shared by all threads behind a lock (sqlite3 objects are not safe to use concurrently); a batch
of corrections is recorded in one transaction so a batch costs one commit, not one per sentence.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

DB_FILENAME = "learners.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mistakes (
    learner_id TEXT NOT NULL,
    error_type TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (learner_id, error_type)
)
"""
_UPSERT = """
INSERT INTO mistakes (learner_id, error_type, count) VALUES (?, ?, 1)
ON CONFLICT (learner_id, error_type) DO UPDATE SET count = count + 1
RETURNING count
"""


def default_data_dir() -> Path:
    env = os.environ.get("MINISERVE_DATA_DIR")
    return Path(env) if env else Path.home() / ".local" / "share" / "miniserve"


def default_db_path() -> str:
    return str(default_data_dir() / DB_FILENAME)


class LearnerMemory:
    def __init__(self, path: str | None = None, *, timeout_s: float = 10.0) -> None:
        self.path = default_db_path() if path is None else path
        if self.path != ":memory:" and not self.path.startswith("file:"):
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so a batch is exactly one transaction.
        self._conn = sqlite3.connect(self.path, timeout=timeout_s, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._conn.execute(_SCHEMA)

    def record(self, learner_id: str, error_type: str) -> int:
        return self.record_many([(learner_id, error_type)])[0]

    def record_many(self, items: Iterable[tuple[str, str]]) -> list[int]:
        """Count one mistake per (learner_id, error_type) item, in one transaction.

        Returns each item's count after its own increment, so two identical items in one batch get n+1, n+2.
        """
        items = list(items)
        if not items:
            return []
        counts: list[int] = []
        with self._lock:
            # IMMEDIATE takes the write lock up front, so two processes on one file wait instead of deadlocking.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for learner_id, error_type in items:
                    counts.append(self._conn.execute(_UPSERT, (learner_id, error_type)).fetchone()[0])
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return counts

    def counts(self, learner_id: str) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT error_type, count FROM mistakes WHERE learner_id = ? ORDER BY error_type", (learner_id,)
            ).fetchall()
        return dict(rows)

    def count(self, learner_id: str, error_type: str) -> int:
        return self.counts(learner_id).get(error_type, 0)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> LearnerMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from miniserve.tutor import memory
from miniserve.tutor.memory import LearnerMemory


def test_counts_per_learner_and_type() -> None:
    m = LearnerMemory(":memory:")
    assert m.counts("ana") == {}
    assert m.record("ana", "overregularized_past") == 1
    assert m.record("ana", "overregularized_past") == 2
    assert m.record("ana", "base_for_past") == 1
    assert m.record("ben", "overregularized_past") == 1
    assert m.counts("ana") == {"base_for_past": 1, "overregularized_past": 2}
    assert m.count("ben", "overregularized_past") == 1 and m.count("nobody", "base_for_past") == 0


def test_record_many_returns_running_counts_in_order() -> None:
    m = LearnerMemory(":memory:")
    m.record("ana", "base_for_past")
    got = m.record_many([("ana", "base_for_past"), ("ben", "base_for_past"), ("ana", "base_for_past")])
    assert got == [2, 1, 3]
    assert m.record_many([]) == []


def test_record_many_is_one_transaction() -> None:
    m = LearnerMemory(":memory:")
    m.record("ana", "base_for_past")
    with pytest.raises(sqlite3.IntegrityError):
        m.record_many([("ana", "base_for_past"), (None, "base_for_past")])  # type: ignore[list-item]
    assert m.counts("ana") == {"base_for_past": 1}  # the first item was rolled back with the failing one
    assert m.record("ana", "base_for_past") == 2  # and the connection is usable afterwards


def test_persists_across_instances(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "learners.sqlite3"
    with LearnerMemory(str(db)) as m:
        m.record_many([("ana", "past_for_participle")] * 2)
    assert db.exists()
    with LearnerMemory(str(db)) as m2:
        assert m2.record("ana", "past_for_participle") == 3


def test_thread_safe_counting(tmp_path: Path) -> None:
    m = LearnerMemory(str(tmp_path / "t.sqlite3"))

    def work() -> None:
        for _ in range(25):
            m.record_many([("ana", "base_for_past"), ("ben", "base_for_past")])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.counts("ana") == {"base_for_past": 200} and m.counts("ben") == {"base_for_past": 200}


def test_default_path_honours_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MINISERVE_DATA_DIR", str(tmp_path / "data"))
    assert memory.default_db_path() == str(tmp_path / "data" / "learners.sqlite3")
    m = LearnerMemory()
    m.record("x", "base_for_past")
    assert (tmp_path / "data" / "learners.sqlite3").exists()
    monkeypatch.delenv("MINISERVE_DATA_DIR")
    assert memory.default_db_path().endswith(".local/share/miniserve/learners.sqlite3")

"""A saved sweep is judged only as the result of the commit that measured it, and only while it is fresh."""

from __future__ import annotations

from datetime import datetime, timezone

from miniserve.lab.benchmark_doc import stale_reason


def test_stale_sweeps_are_refused_with_the_reason() -> None:
    now = datetime(2025, 11, 28, 16, 0, tzinfo=timezone.utc)
    doc = {"commit_info": {"id": "abc"}, "datetime": "2025-11-28T15:00:00+00:00"}
    assert stale_reason(doc, "abc", 24, now) is None
    assert "commit abc, the tree is at def" in stale_reason(doc, "def", 24, now)
    assert "1.0 h old" in stale_reason(doc, "abc", 0.5, now)
    assert "cannot read the current git commit" in stale_reason(doc, None, 24, now)
    assert "no datetime" in stale_reason({"commit_info": {"id": "abc"}}, "abc", 24, now)

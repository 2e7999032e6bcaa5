"""A pytest-benchmark JSON document as the sweeps write it: which lab each record belongs to, one document per lab,
and whether a saved document may be judged as the current code's result. Stdlib only (the top-level conftest)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

def stale_reason(data: Mapping[str, Any], head: str | None, max_age_h: float,
                 now: datetime | None = None) -> str | None:
    """Why a saved sweep JSON may not be judged as the current code's result (None: it may): it must carry the
    current git commit and be at most max_age_h hours old."""
    commit = (data.get("commit_info") or {}).get("id")
    if head is None:
        return "cannot read the current git commit to check that the JSON belongs to it"
    if commit != head:
        return f"it was measured at commit {commit}, the tree is at {head}: the numbers describe other code"
    raw = data.get("datetime")
    if not raw:
        return "it carries no datetime"
    age_h = ((now or datetime.now(timezone.utc)) - datetime.fromisoformat(raw)).total_seconds() / 3600
    if age_h > max_age_h:
        return f"it is {age_h:.1f} h old (limit --sweep-max-age-hours {max_age_h:g})"
    return None


# -- which lab a benchmark record belongs to ---------------------------------------------------------------------------

LAB_02, LAB_03 = "02", "03"
LABS = (LAB_02, LAB_03)
# machine_info["miniserve"] keys holding a lab's parameters: lab 02's predates lab 03, hence the plain "sweep"
LAB_PARAMS_KEY = {LAB_02: "sweep", LAB_03: "lab03"}


def benchmark_lab(entry: Mapping[str, Any]) -> str:
    """Lab 03's records say so (extra_info["lab"] == "03"); everything else -- lab 02's sweep, its offline and
    server-tuning benchmarks, and every JSON saved before lab 03 -- is lab 02's."""
    return str((entry.get("extra_info") or {}).get("lab") or LAB_02)


def labs_in(data: Mapping[str, Any]) -> list[str]:
    """The labs a benchmark JSON holds records of, in lab order."""
    found = {benchmark_lab(b) for b in data.get("benchmarks") or []}
    return [lab for lab in LABS if lab in found]


def split_by_lab(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """One benchmark document per lab present: that lab's benchmarks and parameters only, everything else as is.
    A document of one lab comes back unchanged (lab 02's reports stay byte for byte what they were)."""
    labs = labs_in(data)
    if len(labs) <= 1:
        return {lab: dict(data) for lab in labs}
    out = {}
    for lab in labs:
        doc = dict(data)
        doc["benchmarks"] = [b for b in data.get("benchmarks") or [] if benchmark_lab(b) == lab]
        machine = dict(data.get("machine_info") or {})
        info = dict(machine.get("miniserve") or {})
        for other in LABS:
            if other != lab:
                info.pop(LAB_PARAMS_KEY[other], None)
                info.pop(f"lab{other}_workload", None)
        machine["miniserve"] = info
        doc["machine_info"] = machine
        out[lab] = doc
    return out

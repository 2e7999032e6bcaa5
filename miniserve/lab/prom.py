"""The server's Prometheus text, as the labs read it: histograms and labelled counters from one scrape, and what a
run added between two scrapes.

Both labs scrape /metrics before and after a run and keep the difference: lab 02 one histogram (batch sizes, every
bucket kept), lab 03 several histograms (only the non-empty buckets kept) and the token counters. Stdlib only at
import; parsing imports prometheus_client when called.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

INF = "+Inf"


def bound(le: str) -> str:
    """A bucket's upper bound as the labs key it: "+Inf", else the number in its shortest form ("2.0" -> "2")."""
    return le if le == INF else f"{float(le):g}"


def bound_value(b: str) -> float:
    """A bound key as a number, for sorting ("+Inf" last)."""
    return float("inf") if b == INF else float(b)


def parse(metrics_text: str, histograms: Iterable[str] = (), counters: Mapping[str, str] | None = None
          ) -> dict[str, Any]:
    """The families named, from Prometheus text, by family name: a histogram as {"cumulative": {bound: n}, "count",
    "sum"}; a counter (`counters`: family name -> label) as {that label's value: total}. A family the text does not
    hold is None."""
    from prometheus_client.parser import text_string_to_metric_families

    hists, counters = list(histograms), dict(counters or {})
    out: dict[str, Any] = dict.fromkeys([*hists, *counters])
    for family in text_string_to_metric_families(metrics_text):
        if family.name in hists:
            h: dict[str, Any] = {"cumulative": {}, "count": 0.0, "sum": 0.0}
            for s in family.samples:
                if s.name.endswith("_bucket"):
                    h["cumulative"][bound(s.labels["le"])] = s.value
                elif s.name.endswith("_count"):
                    h["count"] = s.value
                elif s.name.endswith("_sum"):
                    h["sum"] = s.value
            out[family.name] = h
        elif family.name in counters:
            label = counters[family.name]
            out[family.name] = {s.labels.get(label, "?"): s.value for s in family.samples if s.name.endswith("_total")}
    return out


def histogram_delta(before: Mapping[str, Any] | None, after: Mapping[str, Any], keep_empty: bool = True
                    ) -> dict[str, Any]:
    """What happened between two scrapes of one histogram: observations per bucket (non-cumulative, keyed by upper
    bound; with keep_empty False only the buckets that gained any), their count and their sum. `before` None: the
    histogram did not exist yet (all zero)."""
    b = before or {"cumulative": {}, "count": 0.0, "sum": 0.0}
    buckets, below = {}, 0.0
    for key in sorted(after["cumulative"], key=bound_value):
        cum = after["cumulative"][key] - b["cumulative"].get(key, 0.0)
        n = int(round(cum - below))
        if n or keep_empty:
            buckets[key] = n
        below = cum
    return {"buckets": buckets, "count": int(round(after["count"] - b["count"])), "sum": after["sum"] - b["sum"]}


def counter_delta(before: Mapping[str, float] | None, after: Mapping[str, float]) -> dict[str, int]:
    """A labelled counter's increase between two scrapes, by label value (sorted)."""
    was = before or {}
    return {k: int(round(v - was.get(k, 0.0))) for k, v in sorted(after.items())}

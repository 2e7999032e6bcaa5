"""The one Prometheus reader both labs use: histograms and labelled counters from a scrape, deltas between two."""

from __future__ import annotations

from miniserve.lab import prom

TEXT = """# TYPE h histogram
h_bucket{le="1.0"} %d
h_bucket{le="2.5"} %d
h_bucket{le="+Inf"} %d
h_count %d
h_sum %d
# TYPE c_total counter
c_total{kind="a"} %d
"""


def test_one_scrape_gives_the_named_histograms_and_counters_and_none_for_the_rest() -> None:
    got = prom.parse(TEXT % (1, 3, 3, 3, 6, 7), ["h", "missing"], {"c": "kind", "absent": "kind"})
    assert got == {"h": {"cumulative": {"1": 1, "2.5": 3, "+Inf": 3}, "count": 3, "sum": 6}, "missing": None,
                   "c": {"a": 7}, "absent": None}
    assert prom.parse("", ["h"]) == {"h": None}


def test_a_histogram_delta_keeps_or_drops_the_empty_buckets() -> None:
    before, after = (prom.parse(TEXT % v, ["h"])["h"] for v in ((1, 3, 3, 3, 6, 0), (1, 5, 5, 5, 11, 0)))
    assert prom.histogram_delta(before, after) == {"buckets": {"1": 0, "2.5": 2, "+Inf": 0}, "count": 2, "sum": 5}
    assert prom.histogram_delta(before, after, keep_empty=False) == {"buckets": {"2.5": 2}, "count": 2, "sum": 5}
    assert prom.histogram_delta(None, after, keep_empty=False)["buckets"] == {"1": 1, "2.5": 4}  # no scrape before


def test_a_counter_delta_is_by_label_and_sorted() -> None:
    assert prom.counter_delta({"b": 1.0}, {"b": 4.0, "a": 2.0}) == {"a": 2, "b": 3}
    assert prom.counter_delta(None, {"a": 2.0}) == {"a": 2}

"""A lab-02 sweep's configurations and load: parsing, validation, and whether a run used the lab's defaults."""

from __future__ import annotations

import pytest

from miniserve.lab.sweep_params import LAB_CONFIGS, SweepParams, parse_configs, parse_loads


def test_lab_configs_parse_with_the_baseline_first() -> None:
    configs = parse_configs("8:20," + LAB_CONFIGS.replace(",8:20", ""))
    assert [c.key for c in configs] == ["baseline", "static-8-20", "static-1-0", "static-2-10", "static-4-10",
                                        "static-16-20", "static-32-50", "static-64-50"]
    assert configs[1].server_args() == ["--mode", "static", "--max-batch", "8", "--max-wait-ms", "20"]
    assert configs[0].server_args() == ["--mode", "unbatched"]
    assert configs[1].label == "static max_batch=8, max_wait=20 ms"


@pytest.mark.parametrize(("text", "match"), [
    ("8:20", "needs the 'baseline'"), ("baseline,8", "MAX_BATCH:MAX_WAIT_MS"), ("baseline,x:1", "bad sweep"),
    ("baseline,0:5", "max_batch must be >= 1"), ("baseline,4:-1", "max_wait_ms must be >= 0"),
    ("baseline,8:20,8:20.0", "duplicate"),
])
def test_bad_configs_are_refused_with_a_reason(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_configs(text)


def test_params_know_whether_they_are_the_labs() -> None:
    assert SweepParams().is_lab_default()
    assert not SweepParams(total=100).is_lab_default()
    assert SweepParams(configs=LAB_CONFIGS.replace("8:20", "8:20.0")).is_lab_default()  # normalized
    assert SweepParams.from_dict(SweepParams(runs=1).to_dict() | {"unknown": 1}) == SweepParams(runs=1)
    with pytest.raises(ValueError, match="runs must be >= 1"):
        SweepParams(runs=0)
    for seconds in (0.0, -1.0, float("nan"), float("inf")):  # inf: the sweep's open loop would never end
        with pytest.raises(ValueError, match="open_loop_duration_s must be finite and > 0"):
            SweepParams(open_loop_duration_s=seconds)


def test_a_sweep_recorded_before_the_payload_field_is_the_lab_default_of_its_day() -> None:
    old = SweepParams.from_dict({"open_loop_loads": [0.2, 0.5]})
    assert old.payloads is None and "payloads" not in old.to_dict() and old.is_lab_default()
    assert SweepParams().payloads == "bench/payloads/lab02.json" and SweepParams().is_lab_default()
    assert not SweepParams(payloads="bench/payloads/learner.json").is_lab_default()


def test_open_loop_loads_are_fractions_judged_at_the_first() -> None:
    assert SweepParams().open_loop_loads == (0.2, 0.5) and SweepParams().judged_load == 0.2
    assert SweepParams(open_loop_loads=parse_loads("0.5, 0.2")).judged_load == 0.5
    assert SweepParams.from_dict(SweepParams().to_dict()) == SweepParams()  # as JSON reads it back
    # a sweep saved before there were two loads ran one, at its open_loop_rate_fraction
    assert SweepParams.from_dict({"open_loop_rate_fraction": 0.5}).open_loop_loads == (0.5,)
    for bad, match in (((), "fractions in"), ((0.0,), "fractions in"), ((1.5,), "fractions in"),
                       ((0.2, 0.2), "duplicate")):
        with pytest.raises(ValueError, match=match):
            SweepParams(open_loop_loads=bad)
    with pytest.raises(ValueError, match="comma-separated fractions"):
        parse_loads("half")

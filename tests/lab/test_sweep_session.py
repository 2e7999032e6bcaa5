"""The session wiring of the sweep, without servers: a stand-in bench module writes synthetic benchmark records the
way bench/test_sweep.py does, and the real top-level conftest and acceptance module must run acceptance after it
(whatever the order of paths), judge exactly those records, and write the experiment folder from the saved JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._sweep_fakes import fake_benchmark_json, per_run_records

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]

FAKE_BENCH = '''
import json, pytest
RECORDS = json.load(open({path!r}))["benchmarks"]

@pytest.mark.parametrize("i", range(len(RECORDS)))
def test_fake_sweep(i, benchmark, sweep_store, request):
    record = RECORDS[i]
    benchmark.extra_info.update(record["extra_info"])
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    sweep_store.add(request.node.name, benchmark.extra_info)
'''


@pytest.fixture()
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\n")
    (pytester.path / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    acceptance = pytester.mkdir("test_acceptance")
    for name in ("conftest.py", "test_lab02.py"):
        (acceptance / name).write_text((ROOT / "test_acceptance" / name).read_text())
    return pytester


@pytest.mark.parametrize("per_run", [False, True], ids=["record-per-config", "record-per-run"])
def test_acceptance_judges_the_sweep_of_the_same_session_and_the_report_follows(project: pytest.Pytester,
                                                                                  per_run: bool) -> None:
    doc = per_run_records(fake_benchmark_json()) if per_run else fake_benchmark_json()
    n = len(doc["benchmarks"])  # 8 configs x 3 loops (x 3 runs when per run) + 1 calibration
    records = project.path / "records.json"
    records.write_text(json.dumps(doc))
    project.mkdir("bench")
    (project.path / "bench" / "test_fake.py").write_text(FAKE_BENCH.format(path=str(records)))
    # acceptance named first on purpose: the conftest must still run it after the sweep
    result = project.runpytest_subprocess("test_acceptance", "bench", "--benchmark-json=out.json",
                                          "--experiment-dir=exp", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=n + 21)  # the synthetic benchmark records, 21 acceptance tests
    lines = [ln for ln in result.outlines if " PASSED" in ln]
    assert all("bench/" in ln for ln in lines[:n]) and all("test_acceptance/" in ln for ln in lines[n:])
    result.stdout.fnmatch_lines(["*lab-02 experiment*", "*PASS * saturation: throughput saturates at max_batch=8*",
                                 "outcome: PASS -- every criterion passed"])
    manifest = json.loads((project.path / "exp" / "manifest.json").read_text())
    assert manifest["acceptance"]["all_passed"] is True
    saved = json.loads((project.path / "out.json").read_text())
    assert saved["machine_info"]["miniserve"]["sweep"]["configs"] == "baseline,1:0,2:10,4:10,8:20,16:20,32:50,64:50"
    assert json.loads((project.path / "exp" / "benchmark.json").read_text())["benchmarks"] == saved["benchmarks"]


def test_acceptance_without_a_sweep_fails_and_says_how_to_run_it(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("test_acceptance", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=21)
    result.stdout.fnmatch_lines(["*no sweep results in this session: run `pytest bench test_acceptance*"])
    assert not (project.path / "experiments").exists()

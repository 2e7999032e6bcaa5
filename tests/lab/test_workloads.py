"""Lab 03's payload set: the committed file is exactly what the generator gives, the mix is what the issue asks
(~70% short 3-8 words, ~30% long 25-60 words, half of those 2-3 held-out sentences), and `miniserve loadtest
--payloads` sends only the API's fields and splits latencies by length class."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from miniserve.cli import main
from miniserve.lab import latency, loadgen, workloads
from miniserve.lab.loadgen import RequestRecord
from miniserve.server.payload import FIELDS, MAX_SENTENCE_CHARS
from miniserve.tutor.corpus import generate_pairs

SMALL = workloads.Lab03Spec(n=60, pool=4000)


@pytest.fixture(scope="module")
def small() -> list[dict]:
    return workloads.lab03_payloads(SMALL)


def test_the_committed_lab03_file_is_what_the_generator_gives() -> None:
    committed = workloads.LAB03_FILE.read_text(encoding="utf-8")
    regenerated = workloads.render("lab03", workloads.Lab03Spec(), workloads.lab03_payloads(workloads.Lab03Spec()))
    assert committed == regenerated, "regenerate it: python -m miniserve.lab.workloads lab03"


def test_the_committed_lab03_file_is_the_labs_mix() -> None:
    w = workloads.load_workload(workloads.LAB03_FILE)
    assert w.name == "lab03" and len(w.payloads) == 400
    assert w.counts() == {"short": 280, "long": 120}
    shapes = Counter(p["shape"] for p in w.payloads)
    assert shapes == {"single": 280, "multi_clause": 60, "multi_sentence": 60}
    header = json.loads(workloads.LAB03_FILE.read_text(encoding="utf-8"))
    assert header["counts"] == {"short": 280, "long": 120} and header["generator"]["seed"] == 0


def test_the_committed_learner_file_is_what_the_generator_gives() -> None:
    committed = workloads.LEARNER_FILE.read_text(encoding="utf-8")
    regenerated = workloads.render("learner", workloads.LearnerSpec(),
                                   workloads.learner_payloads(workloads.LearnerSpec()))
    assert committed == regenerated, "regenerate it: python -m miniserve.lab.workloads learner"


def test_the_learner_set_is_the_held_out_split_as_learners_write_it() -> None:
    w = workloads.load_workload(workloads.LEARNER_FILE)
    assert w.name == "learner" and len(w.payloads) == 400
    heldout = {p.source for p in generate_pairs(4000, "heldout", seed=0)}
    train = {p.source for p in generate_pairs(4000, "train", seed=0)}
    for p in w.payloads:
        assert len(p["sentence"]) <= MAX_SENTENCE_CHARS
        if p["sentences"] == 1:
            assert p["sentence"] in heldout and p["sentence"] not in train
    shapes = Counter(p["shape"] for p in w.payloads)
    assert shapes["multi_sentence"] == 80  # a fifth: 2-3 held-out sentences
    kinds = Counter(k for p in w.payloads for k in p["kinds"])
    assert kinds["error"] > kinds["correct"] > kinds["ood"] > 0  # the split's own mix, not only errors
    n_words = sorted(p["words"] for p in w.payloads if p["sentences"] == 1)
    # every length bucket `miniserve eval` reports is there, in the split's proportions
    assert sum(n <= 10 for n in n_words) > 50 and sum(n > 25 for n in n_words) > 50 and n_words[-1] <= 60


def test_generation_is_deterministic_and_seeded(small: list[dict]) -> None:
    assert workloads.lab03_payloads(SMALL) == small
    other = workloads.lab03_payloads(workloads.Lab03Spec(n=60, seed=1, pool=4000))
    assert [p["sentence"] for p in other] != [p["sentence"] for p in small]


def test_every_payload_is_in_its_class_and_held_out(small: list[dict]) -> None:
    heldout = {p.source for p in generate_pairs(SMALL.pool, "heldout", seed=SMALL.seed)}
    for p in small:
        n = len(p["sentence"].split())
        assert p["words"] == n and len(p["sentence"]) <= 500
        if p["length"] == "short":
            assert 3 <= n <= 8 and p["sentences"] == 1 and p["sentence"] in heldout
        else:
            assert p["length"] == "long" and 25 <= n <= 60
            if p["shape"] == "multi_clause":
                assert p["sentences"] == 1 and p["sentence"] in heldout
            else:  # each part a whole held-out sentence, joined by one space
                assert p["shape"] == "multi_sentence" and p["sentences"] in (2, 3) and len(p["kinds"]) == p["sentences"]
    assert Counter(p["length"] for p in small) == {"short": 42, "long": 18}
    assert Counter(p["shape"] for p in small)["multi_sentence"] == 9
    assert len({p["sentence"] for p in small}) == len(small)


def test_short_and_long_are_interleaved(small: list[dict]) -> None:
    first_half = Counter(p["length"] for p in small[:30])
    assert first_half["short"] and first_half["long"]


def test_a_corpus_without_long_sentences_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from miniserve.tutor import corpus

    real = corpus.generate_pairs
    monkeypatch.setattr(corpus, "generate_pairs", lambda n, split, seed: [p for p in real(n, split, seed)
                                                                          if len(p.source.split()) < 25])
    with pytest.raises(workloads.WorkloadError, match="long single sentences"):
        workloads.lab03_payloads(SMALL)


def test_only_the_apis_fields_are_sent() -> None:
    assert set(workloads.BODY_FIELDS) == FIELDS
    w = workloads.Workload("x", [{"sentence": "She have a dog.", "length": "short", "learner_id": "ana", "words": 4}])
    assert w.bodies == [{"sentence": "She have a dog.", "learner_id": "ana"}]


def test_payloads_keep_to_the_apis_length_limit() -> None:
    # the lab does not import the server at run time (starlette); this keeps its copy of the limit equal
    assert workloads.MAX_CHARS == MAX_SENTENCE_CHARS


def test_payload_files_in_three_shapes(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text(json.dumps([{"sentence": "a b c"}, {"sentence": " ".join(["w"] * 30)}]))
    (tmp_path / "lines.jsonl").write_text('{"sentence": "a b c d e f g h i j"}\n\n{"sentence": "x y z"}\n')
    assert workloads.load_workload(tmp_path / "list.json").classes == ["short", "long"]
    lines = workloads.load_workload(tmp_path / "lines.jsonl")
    assert lines.name == "lines" and lines.classes == ["unknown", "short"]
    for bad, text in (("empty.json", "[]"), ("nosentence.json", '[{"text": "x"}]'), ("junk.json", "{not json")):
        (tmp_path / bad).write_text(text)
        with pytest.raises(workloads.WorkloadError):
            workloads.load_workload(tmp_path / bad)


def test_regenerate_and_check_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(workloads.WORKLOADS, "lab03", (SMALL, workloads.lab03_payloads, tmp_path / "lab03.json"))
    assert workloads.main(["lab03", "--check"]) == 1
    assert workloads.main(["lab03"]) == 0 and "60 payloads (short 42, long 18)" in capsys.readouterr().out
    assert workloads.main(["lab03", "--check"]) == 0
    (tmp_path / "lab03.json").write_text((tmp_path / "lab03.json").read_text().replace("short", "shrt", 1))
    assert workloads.main(["lab03", "--check"]) == 1


def test_records_split_by_their_payloads_class() -> None:
    classes = ["short", "long"]
    records = [RequestRecord(0, 0, 0.010, 200, 0), RequestRecord(0, 0, 0.020, 200, 0),
               RequestRecord(0, 0, 0.500, 200, 1), RequestRecord(0, 0, 1.0, 503, 1), RequestRecord(0, 0, 0.1, 200)]
    parts = latency.summarize_by_class(records, classes)
    assert set(parts) == {"short", "long", "unknown"}
    assert parts["short"].count == 2 and parts["short"].p50_ms == pytest.approx(15.0)
    assert parts["long"].by_status == {200: 1, 503: 1} and parts["long"].p95_ms == pytest.approx(500.0)


class _Echo(BaseHTTPRequestHandler):
    """Answers 200 after 1 ms per word: long payloads are slower, as on the real server."""

    bodies: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        type(self).bodies.append(body)
        time.sleep(0.001 * len(body["sentence"].split()))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self) -> None:  # noqa: N802
        text = b"# TYPE miniserve_kv_cache_slots_used gauge\nminiserve_kv_cache_slots_used 3.0\nminiserve_queue_depth 1\n"
        self.send_response(200)
        self.send_header("content-length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _echo_server() -> Iterator[str]:
    _Echo.bodies = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_loadtest_sends_the_payload_file_and_splits_by_length(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.json"
    f.write_text(workloads.render("tiny", SMALL, workloads.lab03_payloads(SMALL)[:10]))
    w = workloads.load_workload(f)
    with _echo_server() as url:
        assert main(["loadtest", "--url", url, "--concurrency", "2", "--total", "10", "--payloads", str(f),
                     "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(b["sentence"] for b in _Echo.bodies) == sorted(p["sentence"] for p in w.payloads)
    assert all(set(b) == {"sentence"} for b in _Echo.bodies)
    counts = w.counts()
    assert {k: v["count"] for k, v in out["by_class"].items()} == counts
    assert "payloads tiny (10: " in out["run"]


def test_a_bad_payload_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["loadtest", "--url", "http://127.0.0.1:9", "--payloads", str(tmp_path / "none.json")]) == 2
    assert "cannot read payloads" in capsys.readouterr().err


def test_gauges_are_sampled_while_a_run_goes_on() -> None:
    with _echo_server() as url:
        async def go() -> tuple[list[RequestRecord], dict]:
            run = loadgen.run_open_loop(url, 40.0, 0.5, payloads=[{"sentence": "a b c"}])
            return await loadgen.with_gauge_samples(run, url, ("miniserve_kv_cache_slots_used", "miniserve_x"),
                                                    interval_s=0.05)

        records, samples = asyncio.run(go())
    assert records and len(samples["t_s"]) >= 5
    assert samples["t_s"] == sorted(samples["t_s"]) and samples["t_s"][0] < 0.05
    assert set(samples["miniserve_kv_cache_slots_used"]) == {3.0} and set(samples["miniserve_x"]) == {None}
    assert loadgen.read_gauges("a 1\nb{x=\"1\"} 2\nc NaN\n", ("a", "b", "c")) == {"a": 1.0, "b": None,
                                                                                 "c": pytest.approx(float("nan"),
                                                                                                    nan_ok=True)}

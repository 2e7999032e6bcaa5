"""`miniserve loadtest` when there is nothing to measure: no server (one line, no table), a server that never
succeeds (the outcomes, not nan percentiles), and the default URL it shares with `miniserve serve`."""

from __future__ import annotations

import json
import math
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from miniserve.cli import build_parser, main
from miniserve.lab import loadgen
from miniserve.lab.loadgen import RequestRecord, summarize
from miniserve.server.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_URL


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening, closed: connecting to it is refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_server_is_one_line_and_no_table(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    assert main(["loadtest", "--url", url, "--total", "5"]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # no results table, no "throughput 0.0 req/s", no nan
    assert err.splitlines() == [f"connection refused: no server at {url} — start one with `miniserve serve` or "
                                "pass --url"]


@pytest.mark.parametrize("flags", [["--json"], ["--calibrate"], ["--rate", "10", "--duration", "0.2"]])
def test_no_server_is_refused_before_any_run_kind(capsys: pytest.CaptureFixture[str], flags: list[str]) -> None:
    url = f"http://localhost:{_closed_port()}/correct"
    assert main(["loadtest", "--url", url, *flags]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("connection refused: no server at http://localhost:") and "nan" not in err


def test_usage_and_loopback_errors_still_come_first(capsys: pytest.CaptureFixture[str]) -> None:
    closed = f"http://127.0.0.1:{_closed_port()}"
    assert main(["loadtest", "--url", closed, "--rate", "5"]) == 2  # usage error, though nothing listens either
    assert "--rate and --duration" in capsys.readouterr().err
    assert main(["loadtest", "--url", "http://192.0.2.1:8000"]) == 2  # never even connects to a non-loopback host
    assert "loopback" in capsys.readouterr().err


def test_default_url_is_where_serve_listens_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    serve, loadtest = parser.parse_args(["serve"]), parser.parse_args(["loadtest"])
    assert loadtest.url == DEFAULT_URL
    target = urlsplit(loadtest.url)
    assert (target.hostname, target.port) == (serve.host, serve.port) == (DEFAULT_HOST, DEFAULT_PORT)
    for command in ("loadtest", "serve"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
        if command == "loadtest":
            assert f"(default: {DEFAULT_URL}, where `miniserve serve` listens" in text
        else:
            assert f"(default: {DEFAULT_PORT}, the port `miniserve loadtest` targets by default)" in text


def test_summary_with_no_successes_says_why_instead_of_nan() -> None:
    records = [RequestRecord(0, 0, 0.01, 0)] * 3 + [RequestRecord(0, 0, 0.01, 503)] * 5
    summary = summarize(records)
    assert math.isnan(summary.p50_ms)  # the numbers stay what they are (JSON: null) ...
    text = summary.as_text()
    assert "nan" not in text and "p50" not in text  # ... but the text does not print them
    assert text.splitlines()[1] == ("no request succeeded: 5 x HTTP 503, 3 x no HTTP answer (connection refused or "
                                    "reset, timed out, or not sent over the outstanding cap)")
    assert summarize([]).failure_reason() == "no requests were sent"
    ok = summarize([RequestRecord(0, 0, 0.01, 200), RequestRecord(0, 0, 0.01, 503)]).as_text()
    assert "p50 10.0" in ok and "no request succeeded" not in ok


class _Always503(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = b'{"error": {"type": "overloaded", "message": "full"}}'
        self.send_response(503)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_cli_run_without_successes_prints_the_outcomes(capsys: pytest.CaptureFixture[str]) -> None:
    with _http_server(_Always503) as url:
        assert main(["loadtest", "--url", url, "--concurrency", "2", "--total", "6"]) == 1
        out = capsys.readouterr().out
        assert "nan" not in out and "no request succeeded: 6 x HTTP 503" in out
        assert main(["loadtest", "--url", url, "--concurrency", "2", "--total", "4", "--json"]) == 1
        summary = json.loads(capsys.readouterr().out)
        assert summary["p50_ms"] is None and summary["failure"] == "no request succeeded: 4 x HTTP 503"


def test_listener_that_never_answers_passes_the_check_and_times_out_as_status_0(
        capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as listener:  # accepts connections (the kernel's backlog) but never speaks HTTP
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        loadgen.check_listening(url)  # something listens: the check passes
        assert main(["loadtest", "--url", url, "--concurrency", "2", "--total", "2", "--timeout", "0.2"]) == 1
    out = capsys.readouterr().out
    assert "no request succeeded: 2 x no HTTP answer" in out and "nan" not in out


@pytest.mark.parametrize("flags", [["--total", "0"], ["--concurrency", "-1"], ["--timeout", "0"],
                                   ["--rate", "0", "--duration", "1"], ["--calibrate", "--calibrate-total", "0"]])
def test_bad_numbers_are_usage_errors_even_without_a_server(capsys: pytest.CaptureFixture[str],
                                                            flags: list[str]) -> None:
    assert main(["loadtest", "--url", f"http://127.0.0.1:{_closed_port()}", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("miniserve loadtest: error: ") and "must be > 0" in err and "refused" not in err

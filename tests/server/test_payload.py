"""payload.py: messages for bodies that are not JSON read as one sentence a client can act on; a client that goes
away mid-body is a 499, not an unhandled exception."""

from __future__ import annotations

import json

import pytest
from tests._service_fakes import FakeAgent, config, serving

from miniserve.server.errors import MalformedJson
from miniserve.server.payload import parse_json


@pytest.mark.parametrize(("body", "message"), [
    (b'{"sentence": "I goed', "Unterminated string starting at line 1 column 14"),
    (b'{"sentence": "a\x01"}', "Invalid control character at line 1 column 16"),
    (b"{", "Expecting property name enclosed in double quotes at line 1 column 2"),
    (b"nul", "Expecting value at line 1 column 1"),
    (b'{"sentence": "ok"} 2', "Extra data at line 1 column 20"),
])
def test_invalid_json_message_names_the_place_once(body, message):
    with pytest.raises(MalformedJson) as e:
        parse_json(body)
    assert e.value.message == f"the request body is not valid JSON: {message}"
    assert " at at " not in e.value.message


def test_every_json_decoder_message_reads_without_a_doubled_at():
    for bad in ['{"a', '"\x01"', '"\\x"', '"\\u12"', "[1,]", '{"a" 1}', "1 2", "", "{a:1}"]:
        try:
            json.loads(bad)
        except json.JSONDecodeError:
            pass
        else:
            raise AssertionError(bad)
        if not bad:
            continue  # the empty body has its own message
        with pytest.raises(MalformedJson) as e:
            parse_json(bad.encode())
        assert " at at " not in e.value.message and "not valid JSON: " in e.value.message, e.value.message


async def _asgi_post(app, *messages: dict) -> list[dict]:
    """One POST /correct straight through the ASGI interface; `messages` are what receive() returns, in order."""
    queue = list(messages)
    sent: list[dict] = []

    async def receive() -> dict:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/correct", "raw_path": b"/correct", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    await app(scope, receive, send)  # raises if the app let the exception escape (uvicorn's 500 + traceback)
    return sent


async def test_client_gone_mid_body_is_a_499_not_a_500(tmp_path):
    agent = FakeAgent()
    async with serving(config(tmp_path), agent) as (_, app):
        sent = await _asgi_post(app, {"type": "http.request", "body": b'{"sentence', "more_body": True},
                                {"type": "http.disconnect"})
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 499
    body = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    assert body["error"]["type"] == "client_closed_request" and "after 10 bytes" in body["error"]["message"]
    assert agent.calls == []

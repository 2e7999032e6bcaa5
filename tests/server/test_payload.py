"""payload.py's messages for bodies that are not JSON: each reads as one sentence a client can act on."""

from __future__ import annotations

import json

import pytest

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

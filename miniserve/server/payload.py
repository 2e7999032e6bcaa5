"""Reading and validating a /correct body by hand: bounded read, JSON parse, field checks, each failure a typed error.

Content-Type policy (lenient): application/json (any parameters, e.g. charset) and `application/*+json` are parsed;
a *missing* Content-Type is parsed as JSON too (bare clients and `curl --data-binary` without -H stay usable);
any other declared type is a 415, because a form or text body sent by mistake should be told so, not guessed at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request

from miniserve.server.errors import ClientGone, MalformedJson, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from miniserve.tutor.agent import MAX_INPUT_CHARS, NON_BLANK, input_problem  # torch-free: the model loads lazily

MAX_SENTENCE_CHARS = MAX_INPUT_CHARS  # the tutor's own limit: the CLI refuses the same texts
MAX_LEARNER_ID_CHARS = 64
FIELDS = frozenset({"sentence", "learner_id"})

# The /correct and /noop body as OpenAPI 3.0 documents it (app.py serves it); validate_correct enforces each word.
CORRECT_REQUEST_SCHEMA: dict[str, object] = {
    "type": "object", "additionalProperties": False, "required": ["sentence"],
    "properties": {
        "sentence": {"type": "string", "minLength": 1, "maxLength": MAX_SENTENCE_CHARS, "pattern": NON_BLANK.pattern,
                     "description": "the learner's text, one or more sentences; it comes back byte for byte but the "
                                    "edits, and every offset in the answer indexes it as sent, in Unicode code "
                                    "points"},
        "learner_id": {"type": "string", "minLength": 1, "maxLength": MAX_LEARNER_ID_CHARS,
                       "pattern": NON_BLANK.pattern, "nullable": True,
                       "description": "optional; the tutor remembers this learner's recurring mistakes"},
    },
}


@dataclass(slots=True, frozen=True)
class CorrectRequest:
    sentence: str  # as the client sent it: the answer gives back every byte but the edits, offsets index into it
    learner_id: str | None


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, or PayloadTooLarge as soon as it is known to exceed max_bytes (never reads past it)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise MalformedJson(f"Content-Length {declared!r} is not a number") from None
        if length > max_bytes:
            raise PayloadTooLarge(f"request body of {length} bytes exceeds the limit of {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    # Counted while streaming as well: chunked bodies have no Content-Length, and a declared one may lie.
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(f"request body exceeds the limit of {max_bytes} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # gone mid-body (e.g. fewer bytes than its Content-Length): a 499, not a 500 traceback
        raise ClientGone(f"client disconnected after {size} bytes of the request body") from None
    return b"".join(chunks)


def check_content_type(request: Request) -> None:
    raw = request.headers.get("content-type")
    if raw is None or raw.strip() == "":
        return
    media = raw.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    raise UnsupportedMediaType(f"Content-Type {media!r} is not supported; send application/json")


def parse_json(body: bytes) -> object:
    if not body:
        raise MalformedJson("the request body is empty; send a JSON object like {\"sentence\": \"...\"}")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise MalformedJson("the request body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"the request body is not valid JSON: {_where(exc)}") from None
    except RecursionError:
        # 64 KiB of "[[[[..." nests deeper than the parser's recursion limit: still the client's error.
        raise MalformedJson("the request body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. integers too long to convert
        raise MalformedJson(f"the request body is not valid JSON: {exc}") from None


def _where(exc: json.JSONDecodeError) -> str:
    # Some of json's messages already end in "at" ("Unterminated string starting at", "Invalid control character
    # at"): they read as "... starting at line 1 column 14", the others as "Expecting value at line 1 column 1".
    at = "" if exc.msg.endswith(" at") else " at"
    return f"{exc.msg}{at} line {exc.lineno} column {exc.colno}"


def _text(data: dict[str, object], name: str, max_chars: int, *, required: bool) -> str | None:
    if name not in data:
        if required:
            raise ValidationFailed(f"{name}: field required (a non-empty string)", field=name)
        return None
    value = data[name]
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{name}: must be a string, got {_json_type(value)}", field=name)
    if problem := input_problem(value, max_chars):
        raise ValidationFailed(f"{name}: {problem}", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # JSON "\ud800" escapes decode to lone surrogates no tokenizer can take
        raise ValidationFailed(f"{name}: contains an invalid Unicode escape (lone surrogate)", field=name) from None
    return value


def validate_correct(data: object) -> CorrectRequest:
    if not isinstance(data, dict):
        raise ValidationFailed(f"body: must be a JSON object, got {_json_type(data)}", field="body")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ValidationFailed(f"{unknown[0]}: unknown field (allowed: sentence, learner_id)", field=unknown[0])
    sentence = _text(data, "sentence", MAX_SENTENCE_CHARS, required=True)
    learner_id = _text(data, "learner_id", MAX_LEARNER_ID_CHARS, required=False)
    assert sentence is not None
    return CorrectRequest(sentence=sentence, learner_id=learner_id)


async def read_correct_request(request: Request, max_bytes: int) -> CorrectRequest:
    check_content_type(request)
    return validate_correct(parse_json(await read_body(request, max_bytes)))


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"

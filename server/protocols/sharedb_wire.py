"""ShareDB's JSON wire format: constants, request checks and reply builders (no I/O).

Checked against npm ``sharedb`` 7 (``lib/agent.js`` ``_checkRequest``/``_reply``,
``lib/client/connection.js``).  Replies echo what ShareDB's agent echoes, because the client
routes replies by those fields: ``c``/``d`` for document requests, ``id`` for queries and
snapshot requests, ``ch``/``seq`` for presence.  An error reply is the request itself with an
``error: {code, message}`` field added — what the agent sends, and what the client expects (it
matches a failed op to its in-flight op by ``seq``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from server.errors import BadMessage, WeftError

PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 2
# The client checks the handshake's ``type`` is its default type (json0) and fails otherwise.
DEFAULT_TYPE_URI = "http://sharejs.org/types/JSONv0"
TEXT_UNICODE_URI = "http://sharejs.org/types/text-unicode"
# Names a client may use in ``create``: the npm type's name and URI (plus the URI spelling some
# documentation uses); every snapshot we send names the type by TEXT_UNICODE_URI.
TEXT_UNICODE_NAMES = frozenset(
    {"text-unicode", TEXT_UNICODE_URI, "http://sharejs.org/types/textunicode"}
)

MAX_NAME_LENGTH = 256
MAX_SAFE_INTEGER = 9007199254740991

DOC_ACTIONS = frozenset({"f", "s", "u", "op", "nf", "nt"})
BULK_ACTIONS = frozenset({"bf", "bs", "bu"})
QUERY_ACTIONS = frozenset({"qf", "qs", "qu"})


def decode(message: str | bytes) -> dict[str, Any]:
    """Parse one frame; raise :class:`BadMessage` unless it is a JSON object."""
    try:
        request = orjson.loads(message)
    except orjson.JSONDecodeError as exc:
        # orjson refuses lone UTF-16 surrogates, which a JS client produces when it splits an
        # emoji.  The stdlib parser accepts them, so such an op still gets an error reply the
        # client can match to its op (the engine rejects the surrogate) instead of no reply.
        try:
            request = json.loads(message)
        except (ValueError, RecursionError):
            raise BadMessage(f"message is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise BadMessage(
            f"message must be a JSON object with an 'a' action, got {type(request).__name__}"
        )
    return request


def _is_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_NAME_LENGTH
        and value not in ("__proto__", "constructor", "prototype")
    )


def _is_version(value: object) -> bool:
    return value is None or (
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SAFE_INTEGER
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_request(request: dict[str, Any]) -> None:
    """ShareDB's ``_checkRequest``, plus our own name rules; raise :class:`BadMessage`."""
    action = request.get("a")
    if action in DOC_ACTIONS or action == "p":
        if request.get("d") is not None and not _is_name(request["d"]):
            raise BadMessage(f"Invalid id: expected a 1..{MAX_NAME_LENGTH} character string")
        if action in ("nf", "nt") and (request.get("c") is None or request.get("d") is None):
            raise BadMessage("Invalid collection or id: snapshot requests need both")
        if not _is_version(request.get("v")):
            raise BadMessage("Invalid version: expected null or an integer >= 0")
        if request.get("ts") is not None and not _is_number(request["ts"]):
            raise BadMessage("Invalid timestamp")
        if action == "p":
            if not _is_name(request.get("id")):
                raise BadMessage("Invalid presence ID: expected a non-empty string")
            if not _is_version(request.get("pv")):
                raise BadMessage("Invalid presence version: expected an integer >= 0")
    elif action in BULK_ACTIONS:
        _check_bulk(request.get("b"))
    elif action == "hs":
        for key in ("protocol", "protocolMinor"):
            value = request.get(key)
            if value is not None and not isinstance(value, int | float | str):
                raise BadMessage("Invalid protocol")
    if request.get("c") is not None:
        collection = request["c"]
        if not _is_name(collection):
            raise BadMessage(f"Invalid collection: expected a 1..{MAX_NAME_LENGTH} char string")
        if "/" in collection:
            # Documents share one namespace with the CRDT endpoint: "<collection>/<id>".
            raise BadMessage("Invalid collection: '/' separates collection and id in doc names")
    if request.get("ch") is not None and not _is_name(request["ch"]):
        raise BadMessage("Invalid presence channel: expected a non-empty string")
    if request.get("seq") is not None and not _is_number(request["seq"]):
        raise BadMessage("Invalid seq: expected a number")


def _check_bulk(data: object) -> None:
    if isinstance(data, list):
        if not all(_is_name(i) for i in data):
            raise BadMessage("Invalid id in bulk request")
    elif isinstance(data, dict):
        for key, version in data.items():
            if not _is_name(key):
                raise BadMessage("Invalid id in bulk request")
            if not _is_version(version):
                raise BadMessage("Invalid version in bulk request")
    else:
        raise BadMessage("Invalid bulk subscribe data: expected a list of ids or {id: version}")


def doc_name(collection: str, doc_id: str) -> str:
    """The server-wide document name of ShareDB document (collection, id)."""
    return f"{collection}/{doc_id}"


def snapshot_data(version: int, text: str | None) -> dict[str, Any]:
    """ShareDB's ``getSnapshotData``: the type is named unless it is the default (json0)."""
    if text is None:
        return {"v": version, "type": None}
    return {"v": version, "data": text, "type": TEXT_UNICODE_URI}


def op_message(
    collection: str, doc_id: str, version: int, op: Any, src: str | None, seq: int | None
) -> dict[str, Any]:
    """A committed op as the agent's ``_sendOp`` sends it."""
    return {"a": "op", "c": collection, "d": doc_id, "v": version, "src": src, "seq": seq, "op": op}


def error_reply(request: dict[str, Any], exc: WeftError) -> dict[str, Any]:
    """The agent's error reply: the request echoed with an ``error`` field."""
    reply = dict(request)
    reply["error"] = exc.as_dict()
    return reply


def encode(message: dict[str, Any]) -> bytes:
    """UTF-8 JSON, sent in a text frame (the client only parses string frames).

    Falls back to ASCII-escaped JSON for what orjson refuses (lone surrogates echoed back in an
    error reply), which JavaScript parses to the same string.
    """
    try:
        return orjson.dumps(message)
    except TypeError:
        return json.dumps(message, ensure_ascii=True, default=str).encode("ascii")

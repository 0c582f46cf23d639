"""Interop with real Yjs (npm ``yjs`` and ``y-protocols``) through tests/npm/yjs_interop.js.

Yjs positions are UTF-16 code units and ours are code points, so the tests convert; the texts
mix astral emoji, a ZWJ sequence, CJK and combining marks so any offset confusion shows.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from crdt.awareness import decode_awareness_update
from crdt.document import CrdtDocument
from crdt.sync import (
    FrameKind,
    SyncClient,
    SyncServer,
    permission_denied_frame,
    read_frame,
    sync_step1_frame,
    update_frame,
)

NPM = Path(__file__).resolve().parent.parent / "npm"
pytestmark = [
    pytest.mark.npm,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
]

TEXT = "héllo 👩\u200d👩\u200d👧 日本語 e\u0301 🇫🇷 end"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def utf16(text: str, pos: int) -> int:
    """Our code-point position ``pos`` in ``text`` as a Yjs (UTF-16) index."""
    return len(text[:pos].encode("utf-16-le")) // 2


def yjs(commands: list[dict[str, Any]], root: str = "text", client_id: int = 1000) -> list[Any]:
    proc = subprocess.run(
        ["node", str(NPM / "yjs_interop.js")],
        input=json.dumps({"root": root, "clientID": client_id, "commands": commands}),
        capture_output=True,
        text=True,
        cwd=NPM,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


def test_yjs_applies_updates_made_in_python() -> None:
    doc = CrdtDocument(client_id=1)
    updates = [doc.insert(0, TEXT), doc.delete(6, 6), doc.insert(3, "😀"), doc.splice(0, 1, "H")]
    *_, state = yjs([{"cmd": "apply", "update": b64(u)} for u in updates] + [{"cmd": "state"}])
    assert state["text"] == doc.text == "Hél😀lo 日本語 e\u0301 🇫🇷 end"


def test_python_applies_updates_made_by_yjs_at_utf16_positions() -> None:
    model = TEXT
    commands: list[dict[str, Any]] = [{"cmd": "insert", "index": 0, "text": TEXT}]
    for pos, insert in [(7, "→"), (13, "😀"), (-1, "!")]:
        pos = len(model) if pos < 0 else pos
        commands.append({"cmd": "insert", "index": utf16(model, pos), "text": insert})
        model = model[:pos] + insert + model[pos:]
    commands.append({"cmd": "delete", "index": utf16(model, 0), "length": utf16(model, 2)})
    model = model[2:]
    commands.append({"cmd": "state"})
    results = yjs(commands)
    assert results[-1]["text"] == model
    doc = CrdtDocument(client_id=1)
    for result in results[:-1]:
        assert doc.apply_update(unb64(result["update"]))
    assert doc.text == model
    doc.insert(len(model) - 1, "😀")  # and Python keeps editing in code points
    assert doc.text == model[:-1] + "😀!"


def test_concurrent_edits_from_python_and_yjs_converge() -> None:
    base = CrdtDocument(client_id=1)
    first = base.insert(0, TEXT)
    py_updates = [base.insert(6, "🐍 "), base.delete(0, 1), base.insert(len(base), " py")]
    js_model = TEXT[:6] + "🟨js " + TEXT[6:]
    results = yjs(
        [
            {"cmd": "apply", "update": b64(first)},
            {"cmd": "insert", "index": utf16(TEXT, 6), "text": "🟨js "},  # concurrent with 🐍
            {"cmd": "delete", "index": utf16(js_model, js_model.index("日")), "length": 3},
        ]
        + [{"cmd": "apply", "update": b64(u)} for u in py_updates]
        + [{"cmd": "state"}]
    )
    for result in results[1:3]:
        base.apply_update(unb64(result["update"]))
    assert base.text == results[-1]["text"]
    assert "🐍" in base.text and "🟨js" in base.text and "日本語" not in base.text


def test_full_states_load_both_ways() -> None:
    doc = CrdtDocument(client_id=1)
    doc.insert(0, TEXT)
    doc.delete(0, 6)
    (state,) = yjs([{"cmd": "apply", "update": b64(doc.snapshot())}, {"cmd": "state"}])[1:]
    assert state["text"] == doc.text
    again = CrdtDocument.from_snapshot(unb64(state["update"]))
    assert again.text == doc.text
    assert again.state_vector() == unb64(state["stateVector"])


def test_a_custom_root_name_is_what_yjs_reads() -> None:
    doc = CrdtDocument(root="codemirror", client_id=1)
    update = doc.insert(0, "日本")
    commands = [{"cmd": "apply", "update": b64(update)}, {"cmd": "state"}]
    (state,) = yjs(commands, root="codemirror")[1:]
    assert state["text"] == "日本"


def test_a_yjs_provider_syncs_with_the_server_side_protocol() -> None:
    server_doc = CrdtDocument(client_id=1)
    server_doc.insert(0, TEXT)
    server = SyncServer(server_doc)
    opening = server.open("conn")
    provider = yjs(
        [
            {"cmd": "apply", "update": b64(server_doc.snapshot())},  # edits offline, then joins
            {"cmd": "step1"},
            {"cmd": "frame", "data": b64(opening[0])},  # the server's step 1: provider answers
            {"cmd": "awareness", "state": {"user": {"name": "José 😀", "color": "#ff0"}}},
            {"cmd": "updateFrame", "index": 0, "text": "¡"},
            {"cmd": "queryAwareness"},
        ],
        client_id=4242,
    )
    step1 = server.receive("conn", unb64(provider[1]["frame"]))
    assert step1.frame.kind is FrameKind.SYNC_STEP1 and len(step1.reply) == 1
    step2 = server.receive("conn", unb64(provider[2]["reply"]))
    assert step2.frame.kind is FrameKind.SYNC_STEP2 and step2.update is None  # nothing new
    presence = server.receive("conn", unb64(provider[3]["frame"]))
    assert presence.broadcast == (unb64(provider[3]["frame"]),)
    assert server.awareness.states == {4242: {"user": {"name": "José 😀", "color": "#ff0"}}}
    edit = server.receive("conn", unb64(provider[4]["frame"]))
    assert edit.update is not None and server_doc.apply_update(edit.update)
    assert edit.broadcast == (unb64(provider[4]["frame"]),)  # forwarded as received
    assert server_doc.text == "¡" + TEXT
    query = server.receive("conn", unb64(provider[5]["frame"]))
    (reply,) = query.reply
    assert read_frame(reply).kind is FrameKind.AWARENESS
    # A fresh provider, fed the server's answer to its step 1, has the server's text.
    (fresh_step1,) = yjs([{"cmd": "step1"}])
    fresh = SyncServer(server_doc).receive("other", unb64(fresh_step1["frame"]))
    results = yjs([{"cmd": "frame", "data": b64(fresh.reply[0])}, {"cmd": "state"}])
    assert results[1]["text"] == "¡" + TEXT


def test_frames_written_in_python_are_read_by_yjs() -> None:
    doc = CrdtDocument(client_id=1)
    update = doc.insert(0, TEXT)
    server = SyncServer(doc)
    server.receive("a", awareness_from_yjs({"name": "Zoë"}, client_id=77))
    farewell = server.close("a")
    results = yjs(
        [
            {"cmd": "frame", "data": b64(update_frame(update))},
            {"cmd": "frame", "data": b64(sync_step1_frame(doc.state_vector()))},
            {"cmd": "frame", "data": b64(server.open("b")[0])},
            {"cmd": "frame", "data": b64(permission_denied_frame("nö 🚫"))},
            {"cmd": "frame", "data": b64(farewell[0])},
            {"cmd": "state"},
        ]
    )
    assert results[1]["type"] == 0 and results[1]["reply"] is not None  # answers our step 1
    assert results[3]["reason"] == "nö 🚫"
    assert results[-1]["text"] == TEXT
    assert results[-1]["awareness"] == {"1000": {}}  # only its own (empty) local state left


def awareness_from_yjs(state: Any, client_id: int) -> bytes:
    (result,) = yjs([{"cmd": "awareness", "state": state}], client_id=client_id)
    frame = unb64(result["frame"])
    entries = decode_awareness_update(read_frame(frame).payload)
    assert entries == [(client_id, 1, state)]
    return frame


def test_a_python_client_syncs_from_a_yjs_peer() -> None:
    source = yjs([{"cmd": "insert", "index": 0, "text": TEXT}, {"cmd": "state"}])
    server = CrdtDocument()
    server.apply_update(unb64(source[1]["update"]))
    client = SyncClient(CrdtDocument(client_id=5))
    reaction = SyncServer(server).receive("c", client.hello())
    assert client.receive(reaction.reply[0]) == ()
    assert client.synced and client.document.text == TEXT

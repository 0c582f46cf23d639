"""End-of-run convergence: read every document from the server with a real client and check it.

A document has converged when (1) the server's text is exactly the markers every editor of it
typed, each once, nothing else; (2) every editor received every other editor's keystrokes
(counted by the workers); and (3) the editors' own copies agree with the server: for Yjs, the
text rebuilt (with pycrdt, after the run) from everything one recorded editor per document
received plus what it typed; for ShareDB, every editor's final version and length.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from pycrdt import Doc, Text

from benchmarks.live import yjs_wire
from benchmarks.live.markers import key, parse_text
from benchmarks.live.plan import Endpoint
from benchmarks.live.wsclient import OP_TEXT, connect

MAX_PROBLEMS = 10


@dataclass
class ServerDoc:
    text: str
    version: int | None = None  # ShareDB only


@dataclass
class Verdict:
    ok: bool = True
    docs: int = 0
    problems: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        self.ok = False
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "docs": self.docs, "problems": self.problems}


async def read_yjs(ep: Endpoint, doc: str, timeout: float = 15.0) -> ServerDoc:
    framing = yjs_wire.framing_for(ep.protocol, doc)
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def on_message(payload: bytes, opcode: int) -> None:
        if not got.done() and framing.is_sync_reply(payload):
            updates = framing.updates_in(payload)
            got.set_result(updates[0] if updates else yjs_wire.EMPTY_UPDATE)

    client = await connect(ep.host, ep.port, ep.path(doc), on_message, timeout)
    try:
        for message in framing.hello():
            client.send(message)
        update = await asyncio.wait_for(got, timeout)
    finally:
        await client.close()
    ydoc: Doc = Doc()
    text = ydoc.get("text", type=Text)
    ydoc.apply_update(update)
    return ServerDoc(str(text))


async def read_sharedb(ep: Endpoint, doc: str, timeout: float = 15.0) -> ServerDoc:
    got: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    client = None

    def on_message(payload: bytes, opcode: int) -> None:
        msg = orjson.loads(payload)
        if msg.get("a") == "hs" and client is not None:
            client.send(orjson.dumps({"a": "f", "c": ep.collection, "d": doc}), OP_TEXT)
        elif msg.get("a") == "f" and not got.done():
            got.set_result(msg)

    client = await connect(ep.host, ep.port, ep.path(doc), on_message, timeout)
    try:
        client.send(orjson.dumps({"a": "hs", "protocol": 1, "protocolMinor": 1, "id": None}),
                    OP_TEXT)
        msg = await asyncio.wait_for(got, timeout)
    finally:
        await client.close()
    if "error" in msg:
        raise RuntimeError(f"fetch {doc!r}: {msg['error']}")
    data = msg.get("data") or {}
    return ServerDoc(data.get("data") or "", int(data.get("v") or 0))


async def read_all(ep: Endpoint, docs: list[str], concurrency: int = 16) -> dict[str, ServerDoc]:
    gate = asyncio.Semaphore(concurrency)
    reader = read_sharedb if ep.protocol == "sharedb" else read_yjs

    async def one(doc: str) -> tuple[str, ServerDoc]:
        async with gate:
            return doc, await reader(ep, doc)

    return dict(await asyncio.gather(*(one(d) for d in docs)))


def check_replicas(verdict: Verdict, views: list[dict[str, ServerDoc]]) -> None:
    """Every replica must hold the same text as the first for every document."""
    for i, view in enumerate(views[1:], start=1):
        for doc, sd in views[0].items():
            other = view.get(doc)
            if other is None or other.text != sd.text:
                verdict.fail(f"{doc}: replica {i} differs from replica 0")


def check(
    server_docs: dict[str, ServerDoc],
    doc_editors: dict[str, list[int]],
    keystrokes: int,
    worker_results: list[dict[str, Any]],
) -> Verdict:
    """Apply the three checks of the module docstring."""
    verdict = Verdict(docs=len(server_docs))
    for doc, sd in server_docs.items():
        keys = parse_text(sd.text)
        if keys is None:
            verdict.fail(f"{doc}: server text is not a concatenation of markers "
                         f"({len(sd.text)} chars)")
            continue
        want = Counter(key(e, k) for e in doc_editors[doc] for k in range(keystrokes))
        have = Counter(keys)
        if have != want:
            missing = sum((want - have).values())
            extra = sum((have - want).values())
            verdict.fail(f"{doc}: server has {missing} keystrokes missing, {extra} extra")
    for result in worker_results:
        if result["delivered"] < result["expected"]:
            verdict.fail(f"worker: {result['expected'] - result['delivered']} deliveries missing "
                         f"({result['incomplete_editors']} editors incomplete)")
        for label, text in result["texts"].items():
            doc = label.rsplit("#", 1)[0]
            if doc in server_docs and text != server_docs[doc].text:
                verdict.fail(f"{label}: editor's rebuilt text differs from the server's")
        for ed in result["editors"]:
            got = server_docs.get(ed["doc"])
            if got is None or got.version is None:
                continue
            if (ed["version"], ed["length"]) != (got.version, len(got.text)):
                verdict.fail(f"editor {ed['editor']} on {ed['doc']}: at v{ed['version']} with "
                             f"{ed['length']} chars, server at v{got.version} with "
                             f"{len(got.text)}")
    return verdict

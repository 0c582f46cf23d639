"""A small in-memory network for driving either engine with several concurrent clients.

One class per engine, same methods, so the behaviour suite is written once: clients edit their
own copies at once (local echo), messages sit in FIFO queues until the test delivers them, in
whatever interleaving the (seeded) test picks.  The server is the engine document, exactly as
the live server drives it: ``apply`` a client's change, then send ``reply`` to the sender and
``broadcast`` to the others.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from engines.crdt_engine import CRDTEngine
from engines.interface import Effects, Engine
from engines.ot_engine import OTEngine, OTSubmit
from ot import Client


class OTNetwork:
    kind = "ot"

    def __init__(self, server: Engine | None = None) -> None:
        self.server: Any = server or OTEngine.load()
        self.clients: list[Client] = []
        self.up: list[deque[Any]] = []  # client -> server: submissions
        self.down: list[deque[Any]] = []  # server -> client: ("ack", ack) | ("op", committed)

    def join(self) -> int:
        text, version = self.server.newcomer_state()
        i = len(self.clients)
        self.clients.append(Client(text, version, src=f"c{i}"))
        self.up.append(deque())
        self.down.append(deque())
        return i

    def text(self, i: int) -> str:
        return self.clients[i].text

    def insert(self, i: int, pos: int, text: str) -> None:
        self._queue(i, self.clients[i].insert(pos, text))

    def delete(self, i: int, pos: int, length: int) -> None:
        self._queue(i, self.clients[i].delete(pos, length))

    def _queue(self, i: int, sub: Any) -> None:
        if sub is not None:
            self.up[i].append(sub)

    def deliver_up(self, i: int) -> None:
        sub = self.up[i].popleft()
        fx = self.server.apply(OTSubmit(sub.op, sub.version, sub.src, sub.seq), f"c{i}")
        self.fan_out(fx, sender=i)

    def fan_out(self, fx: Effects, sender: int | None = None) -> None:
        for j in range(len(self.clients)):
            if j == sender:
                self.down[j].extend(("ack", a) for a in fx.reply)
            else:
                self.down[j].extend(("op", c) for c in fx.broadcast)

    def deliver_down(self, i: int) -> None:
        kind, msg = self.down[i].popleft()
        client = self.clients[i]
        if kind == "ack":
            self._queue(i, client.receive_ack(msg.version))
        else:
            client.receive_op(msg.op, msg.version, msg.src, msg.seq)

    def has_traffic(self) -> bool:
        return any(self.up) or any(self.down)


class CRDTNetwork:
    kind = "crdt"

    def __init__(self, server: Engine | None = None) -> None:
        self.server: Any = server or CRDTEngine.load()
        self.clients: list[Any] = []
        self.up: list[deque[bytes]] = []
        self.down: list[deque[bytes]] = []

    def join(self) -> int:
        client = CRDTEngine.load()
        client.apply(self.server.newcomer_state(client.token), "server")
        self.clients.append(client)
        self.up.append(deque())
        self.down.append(deque())
        return len(self.clients) - 1

    def text(self, i: int) -> str:
        return str(self.clients[i].text)

    def insert(self, i: int, pos: int, text: str) -> None:
        self.up[i].extend(self.clients[i].insert(pos, text).broadcast)

    def delete(self, i: int, pos: int, length: int) -> None:
        self.up[i].extend(self.clients[i].delete(pos, length).broadcast)

    def deliver_up(self, i: int) -> None:
        fx = self.server.apply(self.up[i].popleft(), f"c{i}")
        self.fan_out(fx, sender=i)

    def fan_out(self, fx: Effects, sender: int | None = None) -> None:
        for j in range(len(self.clients)):
            if j == sender:
                self.down[j].extend(fx.reply)
            else:
                self.down[j].extend(fx.broadcast)

    def deliver_down(self, i: int) -> None:
        self.clients[i].apply(self.down[i].popleft(), "server")

    def has_traffic(self) -> bool:
        return any(self.up) or any(self.down)


Network = OTNetwork | CRDTNetwork
NETWORKS: dict[str, type[OTNetwork] | type[CRDTNetwork]] = {"ot": OTNetwork, "crdt": CRDTNetwork}

# Code points that stress offset handling: astral emoji (2 UTF-16 units, 4 UTF-8 bytes), a ZWJ
# sequence, CJK (3 UTF-8 bytes), combining marks, plain ASCII.
ALPHABET = ["a", "b", " ", "é", "e\u0301", "日本", "語", "😀", "👩‍👩‍👧", "🇫🇷", "\u0301", "\n"]


def random_edit(net: Network, i: int, rng: random.Random) -> None:
    text = net.text(i)
    if text and rng.random() < 0.35:
        pos = rng.randrange(len(text))
        net.delete(i, pos, rng.randint(1, min(3, len(text) - pos)))
    else:
        net.insert(i, rng.randint(0, len(text)), rng.choice(ALPHABET))


def drain(net: Network, rng: random.Random, limit: int = 1_000_000) -> None:
    """Deliver everything still queued, in random order, until quiet."""
    for _ in range(limit):
        if not net.has_traffic():
            return
        i = rng.randrange(len(net.clients))
        if net.up[i] and (not net.down[i] or rng.random() < 0.5):
            net.deliver_up(i)
        elif net.down[i]:
            net.deliver_down(i)
    raise AssertionError("network did not drain")

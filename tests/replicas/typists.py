"""Simulated editors for the chaos tests: one per client, both engines, same interface.

A typist inserts unique tokens (``[name.n…] ``) at word boundaries, so concurrent inserts never
split one another and the final text can be checked token by token: every token typed and not
deleted must be there exactly once (nothing lost, nothing duplicated), every deleted one gone.
When its connection drops, the typist keeps typing offline and reconnects — to whichever
replica the test names — before its next edit, as an editor with a reconnecting provider does.

Tokens carry ``é`` and ``😀`` so that multi-byte UTF-8 and UTF-16 surrogate pairs go through
every replica and the Redis log too.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Callable, Sequence

from server.client import CRDTClient, OTClientError, OTConnection, OTDoc

TOKEN = re.compile(r"\[[^\]]*\] ")
RECONNECT_TRIES = 40  # bounded in count ...
RECONNECT_SECONDS = 12.0  # ... and in time


def boundaries(text: str) -> list[int]:
    """Code-point positions between tokens (after each space), where inserting is safe."""
    return [0, *(i + 1 for i, ch in enumerate(text) if ch == " ")]


class Typist:
    """What the tests need from an editor, whatever its engine."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.doc = doc
        self.typed: list[str] = []
        self.deleted: set[str] = set()
        # Tokens whose insert or delete was rolled back unacknowledged (OT only): 0 or 1 copy.
        self.uncertain: set[str] = set()
        self.rolled_back: set[str] = set()  # of which inserts (never acknowledged ones)
        # Tokens acknowledged by the server (OT: the ack arrived; CRDT: no acks in Yjs).
        self.acked: set[str] = set()
        self.reconnects = 0
        self.reconnect_errors: list[str] = []

    # Engine-specific parts.
    @property
    def text(self) -> str:
        raise NotImplementedError

    @property
    def connected(self) -> bool:
        raise NotImplementedError

    def _insert(self, pos: int, text: str) -> None:
        raise NotImplementedError

    def _delete(self, pos: int, length: int) -> None:
        raise NotImplementedError

    async def _connect(self, base_url: str) -> None:
        raise NotImplementedError

    async def disconnect(self) -> None:
        raise NotImplementedError

    async def wait_text(self, predicate: Callable[[str], bool], timeout: float) -> None:
        raise NotImplementedError

    async def synced(self, timeout: float = 20) -> None:
        """Wait until the server has everything this typist typed (as far as it can tell)."""

    def describe(self) -> str:
        """State for failure messages."""
        return f"connected={self.connected} reconnects={self.reconnects} text={self.text!r}"

    # Shared behaviour.
    async def connect(self, base_url: str) -> None:
        """(Re)connect to the replica at ``base_url``; retried (bounded) while it refuses."""
        last: Exception | None = None
        deadline = time.monotonic() + RECONNECT_SECONDS
        for _ in range(RECONNECT_TRIES):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._connect(base_url), remaining)
                return
            except (OSError, TimeoutError, OTClientError) as exc:
                last = exc
                self.reconnect_errors.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} could not reconnect to {base_url}: {last!r}")

    def type_token(self, rng: random.Random) -> str:
        token = f"[{self.name}.{len(self.typed)}é😀] "
        self._insert(rng.choice(boundaries(self.text)), token)
        self.typed.append(token)
        return token

    def delete_token(self, rng: random.Random) -> str | None:
        """Delete one whole token currently in the local text (anyone's); None if none."""
        found = list(TOKEN.finditer(self.text))
        if not found:
            return None
        match = rng.choice(found)
        self._delete(match.start(), match.end() - match.start())
        self.deleted.add(match.group())
        return match.group()

    def expect(self, text: str, everyone: Sequence[Typist]) -> None:
        """Assert ``text`` holds every surviving token once and no deleted one.

        Tokens in some typist's :attr:`uncertain` (edits an OT client had to roll back,
        never acknowledged) may be there once or not at all.  Acknowledged ones never are
        uncertain.
        """
        deleted = set().union(*(t.deleted for t in everyone))
        uncertain = set().union(*(t.uncertain for t in everyone))
        typed = {token for t in everyone for token in t.typed}
        for typist in everyone:
            assert not typist.acked & typist.rolled_back, f"{typist.name} lost acked inserts"
            for token in typist.typed:
                count = text.count(token)
                if token in uncertain:
                    assert count <= 1, f"{token!r} occurs {count} times"
                    continue
                want = 0 if token in deleted else 1
                assert count == want, (
                    f"{token!r} (typed by {typist.name}, acked={token in typist.acked}) "
                    f"occurs {count} times, expected {want}")
        found = TOKEN.findall(text)
        assert len(found) == len(set(found)) and set(found) <= typed, "garbled tokens"

    def expected_count(self, everyone: Sequence[Typist]) -> int | None:
        """How many tokens the converged text holds (None when some are uncertain)."""
        if any(t.uncertain for t in everyone):
            return None
        deleted = set().union(*(t.deleted for t in everyone))
        return sum(1 for t in everyone for token in t.typed if token not in deleted)


class CrdtTypist(Typist):
    """A :class:`CRDTClient` (y-websocket protocol).  Yjs has no acks; the tests check the
    stronger property that every update typed, sent or not, ends up everywhere."""

    def __init__(self, name: str, doc: str) -> None:
        super().__init__(name, doc)
        self.client: CRDTClient | None = None

    @property
    def text(self) -> str:
        return self.client.text if self.client is not None else ""

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected

    def _insert(self, pos: int, text: str) -> None:
        assert self.client is not None
        self.client.insert(pos, text)

    def _delete(self, pos: int, length: int) -> None:
        assert self.client is not None
        self.client.delete(pos, length)

    async def _connect(self, base_url: str) -> None:
        if self.client is None:
            self.client = CRDTClient(f"{base_url}/crdt", self.doc)
        else:
            await self.client.disconnect()
            self.client.url = f"{base_url}/crdt/{self.doc}"
            self.reconnects += 1
        await self.client.open()

    async def disconnect(self) -> None:
        if self.client is not None:
            await self.client.disconnect()

    async def wait_text(self, predicate: Callable[[str], bool], timeout: float) -> None:
        assert self.client is not None
        await self.client.wait_for(predicate, timeout)

    async def synced(self, timeout: float = 20) -> None:
        """Connected, and the first sync exchange done (Yjs has no acks to wait for)."""
        async with asyncio.timeout(timeout):
            while not (self.connected and self.client is not None and self.client.synced.is_set()):
                await asyncio.sleep(0.02)

    def describe(self) -> str:
        url = self.client.url if self.client is not None else None
        return f"{super().describe()} url={url}"


class OtTypist(Typist):
    """An :class:`OTConnection` with one :class:`OTDoc` (ShareDB protocol, ``text-unicode``)."""

    def __init__(self, name: str, doc: str) -> None:
        super().__init__(name, doc)
        self.collection, _, self.doc_id = doc.partition("/")
        self.conn: OTConnection | None = None
        self.ot: OTDoc | None = None
        self.rollbacks = 0
        self._unacked: list[str] = []
        self._unacked_deletes: set[str] = set()

    @property
    def text(self) -> str:
        return (self.ot.text or "") if self.ot is not None else ""

    @property
    def connected(self) -> bool:
        return self.conn is not None and self.conn.connected

    def _insert(self, pos: int, text: str) -> None:
        assert self.ot is not None
        self._note_acks()
        self.ot.insert(pos, text)
        self._unacked.append(text)

    def _delete(self, pos: int, length: int) -> None:
        assert self.ot is not None
        self._note_acks()
        deleting = self.text[pos:pos + length]
        self.ot.delete(pos, length)
        self._unacked_deletes.add(deleting)

    def _note_acks(self) -> None:
        """Nothing pending: every edit made so far was acknowledged."""
        self._note_rollbacks()
        if self.ot is not None and self.ot.client is not None and not self.ot.client.pending:
            self.acked.update(self._unacked)
            self._unacked.clear()
            self._unacked_deletes.clear()

    async def _connect(self, base_url: str) -> None:
        if self.conn is None:
            conn = await OTConnection.connect(f"{base_url}/ot")
            self.ot = await conn.open(self.collection, self.doc_id, create_with="")
            self.conn = conn
            return
        assert self.ot is not None
        self.conn.url = f"{base_url}/ot"
        self.reconnects += 1
        await self.conn.reconnect()
        self._note_rollbacks()

    def _note_rollbacks(self) -> None:
        """After a hard rollback (the server no longer had the ops our pending edits need, or
        refused them) those edits were dropped unacknowledged — or committed just before the
        connection broke: each may be there once or not at all."""
        if self.ot is None or self.ot.rollbacks == self.rollbacks:
            return
        self.rollbacks = self.ot.rollbacks
        self.uncertain.update(self._unacked, self._unacked_deletes)
        self.rolled_back.update(self._unacked)
        self.deleted -= self._unacked_deletes
        self._unacked.clear()
        self._unacked_deletes.clear()

    async def disconnect(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()

    async def synced(self, timeout: float = 20) -> None:
        assert self.ot is not None
        await self.ot.synced(timeout)
        self._note_acks()

    def describe(self) -> str:
        client = self.ot.client if self.ot is not None else None
        state = (client.state, client.version) if client is not None else None
        errors = self.ot.errors if self.ot is not None else []
        return (f"{super().describe()} url={self.conn.url if self.conn else None} "
                f"state={state} errors={errors}")

    async def wait_text(self, predicate: Callable[[str], bool], timeout: float) -> None:
        assert self.ot is not None
        await self.ot.wait_for(lambda t: t is not None and predicate(t), timeout)


def make_typist(engine: str, name: str, doc: str) -> Typist:
    return CrdtTypist(name, doc) if engine == "crdt" else OtTypist(name, doc)


async def type_for(typist: Typist, rng: random.Random, count: int, pause: float,
                   reconnect_to: Callable[[], str | None]) -> None:
    """Type ``count`` tokens, ``pause`` s apart; before each, reconnect if the connection
    dropped (to ``reconnect_to()``, or keep typing offline while it returns None)."""
    for _ in range(count):
        if not typist.connected:
            url = reconnect_to()
            if url is not None:
                await typist.connect(url)
        typist.type_token(rng)
        await asyncio.sleep(pause)


async def converge(typists: Sequence[Typist], timeout: float = 30,
                   reconnect_to: Callable[[], str] | None = None) -> str:
    """Wait until every typist shows the same text with every surviving token; return it.

    Once every typist is synced (OT: all its ops acknowledged, so committed), the final text
    is fixed; with no rolled-back edits its token count is known, else all texts agreeing is
    the sign (the authors of every op are among them).  With ``reconnect_to``, a typist whose
    connection drops meanwhile (a replica failing a room) comes back, as an editor would.
    """
    keeper = None
    if reconnect_to is not None:
        keeper = asyncio.get_running_loop().create_task(_keep_connected(typists, reconnect_to))
    try:
        return await _converge(typists, time.monotonic() + timeout)
    finally:
        if keeper is not None:
            keeper.cancel()
            await asyncio.wait({keeper}, timeout=RECONNECT_SECONDS)


async def _keep_connected(typists: Sequence[Typist], reconnect_to: Callable[[], str]) -> None:
    while True:  # cancelled by converge(), which is bounded in time
        for typist in typists:
            if not typist.connected:
                await typist.connect(reconnect_to())
        await asyncio.sleep(0.05)


async def _converge(typists: Sequence[Typist], deadline: float) -> str:
    for typist in typists:
        try:
            await typist.synced(max(1.0, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError(f"{typist.name} never got its edits acknowledged: "
                                 f"{typist.describe()}") from None
    first = typists[0]
    wanted = first.expected_count(typists)

    def settled() -> bool:
        texts = {t.text for t in typists}
        return (len(texts) == 1 and all(t.connected for t in typists)
                and (wanted is None or len(TOKEN.findall(first.text)) == wanted))

    while not settled() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    if not settled():
        states = "\n".join(f"{t.name}: {t.describe()}" for t in typists)
        raise AssertionError(f"no convergence ({wanted} tokens expected):\n{states}")
    final = first.text
    first.expect(final, typists)
    return final

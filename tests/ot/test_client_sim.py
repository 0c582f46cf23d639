"""Several simulated clients against one ServerDocument, over a lossy, reordering network.

Each client has a FIFO channel to the server and one back (like a WebSocket); the test picks at
random which channel moves next, so messages of different clients interleave arbitrarily.
Clients disconnect at random: what the server would send them is lost, what they had sent may
still arrive (its acknowledgement is then lost, and the op reaches the client's new connection
as a broadcast, as in ShareDB, where the echo counts as the acknowledgement), and on
reconnecting they catch up with ``ops_since`` and resend their unacknowledged op — which the
server must recognise when it had committed it already.  Seeded; every failure names its
seed.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import pytest

from ot.client import Client, Submission, Synchronized
from ot.errors import DuplicateOpError
from ot.server_doc import CommittedOp, ServerDocument
from tests.ot.ot_random import random_edit, random_op, random_text


@dataclass
class Peer:
    client: Client
    online: bool = True
    epoch: int = 0  # connection number: replies to an older connection are lost
    up: deque[tuple[int, Submission]] = field(default_factory=deque)
    down: deque[tuple[str, int | CommittedOp]] = field(default_factory=deque)


class Network:
    def __init__(self, text: str, clients: int, rng: random.Random) -> None:
        self.rng = rng
        self.server = ServerDocument(text, max_history=None)
        self.peers = [Peer(Client(text, 0, src=f"c{i}")) for i in range(clients)]
        self.duplicates = 0

    def send(self, peer: Peer, sub: Submission | None) -> None:
        if sub is not None and peer.online:
            peer.up.append((peer.epoch, sub))

    def edit(self, i: int) -> None:
        peer = self.peers[i]
        text = peer.client.text
        op = random_edit(self.rng, text) if self.rng.random() < 0.7 else random_op(self.rng, text)
        self.send(peer, peer.client.edit(op))

    def deliver_up(self, i: int) -> None:
        sender = self.peers[i]
        epoch, sub = sender.up.popleft()
        try:
            op, v = self.server.submit(sub.op, sub.version, sub.src, sub.seq)
        except DuplicateOpError as dup:
            self.duplicates += 1
            v = dup.version
        else:
            committed = CommittedOp(v, op, sub.src, sub.seq)
            for peer in self.peers:  # everyone but the sending connection, as in ShareDB
                if peer.online and not (peer is sender and peer.epoch == epoch):
                    peer.down.append(("op", committed))
        if sender.online and sender.epoch == epoch:
            sender.down.append(("ack", v))

    def deliver_down(self, i: int) -> None:
        peer = self.peers[i]
        kind, msg = peer.down.popleft()
        if kind == "ack":
            assert isinstance(msg, int)
            self.send(peer, peer.client.receive_ack(msg))
        else:
            assert isinstance(msg, CommittedOp)
            if peer.client.receive_op(msg.op, msg.version, msg.src, msg.seq) is None:
                self.send(peer, peer.client.flush())

    def disconnect(self, i: int) -> None:
        peer = self.peers[i]
        peer.online = False
        peer.down.clear()
        while peer.up and self.rng.random() < 0.5:  # the newest messages never left
            peer.up.pop()

    def reconnect(self, i: int) -> None:
        peer = self.peers[i]
        peer.online = True
        peer.epoch += 1
        for committed in self.server.ops_since(peer.client.version):
            peer.client.receive_op(committed.op, committed.version, committed.src,
                                   committed.seq)
        self.send(peer, peer.client.resend())

    def step(self) -> None:
        i = self.rng.randrange(len(self.peers))
        peer = self.peers[i]
        r = self.rng.random()
        if r < 0.35:
            self.edit(i)
        elif r < 0.6 and peer.up:
            self.deliver_up(i)
        elif r < 0.9 and peer.down:
            self.deliver_down(i)
        elif r < 0.95 and peer.online:
            self.disconnect(i)
        elif not peer.online:
            self.reconnect(i)

    def settle(self) -> None:
        for i, peer in enumerate(self.peers):
            if not peer.online:
                self.reconnect(i)
        for _ in range(100_000):
            busy = [i for i, p in enumerate(self.peers) if p.up or p.down]
            if not busy:
                return
            i = self.rng.choice(busy)
            if self.peers[i].up and (not self.peers[i].down or self.rng.random() < 0.5):
                self.deliver_up(i)
            else:
                self.deliver_down(i)
        raise AssertionError("the network did not settle")


@pytest.mark.parametrize("seed", range(40))
def test_clients_converge_with_the_server(seed: int) -> None:
    rng = random.Random(seed)
    net = Network(random_text(rng, 15), clients=rng.randint(2, 5), rng=rng)
    for _ in range(400):
        net.step()
    net.settle()
    for peer in net.peers:
        assert isinstance(peer.client.state, Synchronized), f"seed {seed}"
        assert peer.client.version == net.server.version, f"seed {seed}"
        assert peer.client.text == net.server.text, f"seed {seed}: diverged"


def test_the_simulation_exercises_resubmission() -> None:
    """Across seeds, resent ops that the server had already committed do occur."""
    total = 0
    for seed in range(40):
        rng = random.Random(seed)
        net = Network(random_text(rng, 15), clients=rng.randint(2, 5), rng=rng)
        for _ in range(400):
            net.step()
        net.settle()
        total += net.duplicates
    assert total > 0

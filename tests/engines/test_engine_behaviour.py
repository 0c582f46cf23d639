"""One behaviour suite, run against each engine implementation of ``engines.interface.Engine``."""

from __future__ import annotations

import random

import pytest

from engines.interface import Effects, Engine, EngineError
from tests.engines.harness import NETWORKS, Network, drain, random_edit

KINDS = ["ot", "crdt"]


def network(kind: str) -> Network:
    return NETWORKS[kind]()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_both_implementations_satisfy_the_protocol(kind: str) -> None:
    net = network(kind)
    assert isinstance(net.server, Engine)
    assert net.server.kind == kind


@pytest.mark.parametrize("seed", range(12))
def test_concurrent_edits_from_several_clients_converge(kind: str, seed: int) -> None:
    rng = random.Random(seed)
    net = network(kind)
    for _ in range(4):
        net.join()
    for _ in range(300):
        i = rng.randrange(4)
        r = rng.random()
        if r < 0.5:
            random_edit(net, i, rng)
        elif r < 0.75 and net.up[i]:
            net.deliver_up(i)
        elif net.down[i]:
            net.deliver_down(i)
    drain(net, rng)
    texts = {net.text(i) for i in range(4)}
    assert texts == {net.server.text}, f"seed {seed}: diverged {texts!r}"


def test_a_newcomer_receives_the_current_state(kind: str) -> None:
    net = network(kind)
    a = net.join()
    net.insert(a, 0, "héllo 👋 日本語")
    drain(net, random.Random(0))
    b = net.join()
    assert net.text(b) == "héllo 👋 日本語"
    net.insert(b, 6, "wörld ")
    drain(net, random.Random(1))
    assert net.text(a) == net.text(b) == net.server.text == "héllo wörld 👋 日本語"


def test_server_side_edits_reach_every_client(kind: str) -> None:
    net = network(kind)
    a, b = net.join(), net.join()
    net.insert(a, 0, "ab😀cd")
    drain(net, random.Random(2))
    net.fan_out(net.server.insert(3, "e\u0301", "server"))
    net.fan_out(net.server.delete(0, 1, "server"))
    net.insert(b, 0, "X")  # concurrent with the server's edits
    drain(net, random.Random(3))
    assert net.server.text == "Xb😀e\u0301cd"
    assert net.text(a) == net.text(b) == net.server.text


def test_server_side_edits_take_code_point_positions(kind: str) -> None:
    doc = NETWORKS[kind]().server
    doc.insert(0, "👩‍👩‍👧🇫🇷日本")
    doc.insert(7, "x")  # after the ZWJ family (5 code points) and the flag (2)
    doc.delete(8, 1)
    assert doc.text == "👩‍👩‍👧🇫🇷x本"


def test_snapshot_round_trips(kind: str) -> None:
    net = network(kind)
    a = net.join()
    for i, ch in enumerate("naïve 😀 コード"):
        net.insert(a, i, ch)
    drain(net, random.Random(4))
    cls = type(net.server)
    again = cls.load(net.server.snapshot())
    assert again.text == net.server.text
    assert again.token == net.server.token


def test_snapshot_plus_later_log_reopens_the_same_document(kind: str) -> None:
    doc = NETWORKS[kind]().server
    doc.insert(0, "first ")
    snap = doc.snapshot()
    log: list[bytes] = []
    for fx in (doc.insert(6, "second ✓"), doc.delete(0, 1), doc.insert(0, "F")):
        log.extend(fx.persist)
    again = type(doc).load(snap, log)
    assert again.text == doc.text == "First second ✓"
    assert again.token == doc.token


def test_a_whole_log_without_snapshot_reopens_the_document(kind: str) -> None:
    doc = NETWORKS[kind]().server
    log: list[bytes] = []
    for fx in (doc.insert(0, "abc"), doc.insert(3, "🎉"), doc.delete(1, 1)):
        assert isinstance(fx, Effects)
        log.extend(fx.persist)
    assert type(doc).load(None, log).text == "ac🎉"


@pytest.mark.parametrize(("pos", "length"), [(-1, 1), (0, 99), (5, 1)])
def test_out_of_range_server_delete_is_refused_and_changes_nothing(
    kind: str, pos: int, length: int
) -> None:
    doc = NETWORKS[kind]().server
    doc.insert(0, "a😀b")
    token = doc.token
    with pytest.raises((EngineError, ValueError)):
        doc.delete(pos, length)
    assert doc.text == "a😀b"
    assert doc.token == token


def test_out_of_range_server_insert_is_refused_and_changes_nothing(kind: str) -> None:
    doc = NETWORKS[kind]().server
    doc.insert(0, "日本")
    with pytest.raises((EngineError, ValueError)):
        doc.insert(3, "x")
    assert doc.text == "日本"

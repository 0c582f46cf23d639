"""Whole real editing traces through the server document and through a client."""

from __future__ import annotations

import pytest

from ot.client import Client
from tests.ot.replay_timing import load, replay

SEQUENTIAL = ["automerge-paper", "seph-blog1", "friendsforever_flat"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SEQUENTIAL)
def test_a_trace_submitted_to_the_server_document_reaches_its_end_content(name: str) -> None:
    trace = load(name)
    doc, _ = replay(trace)
    assert doc.text == trace["endContent"]
    assert doc.version == sum(bool(n) + bool(s) for t in trace["txns"] for _, n, s in t["patches"])


@pytest.mark.slow
@pytest.mark.parametrize("name", SEQUENTIAL)
def test_a_trace_typed_into_a_client_reaches_its_end_content(name: str) -> None:
    trace = load(name)
    client = Client(trace["startContent"], 0, src="typist")
    for i, txn in enumerate(trace["txns"]):
        for pos, ndel, ins in txn["patches"]:
            if ndel:
                client.delete(pos, ndel)
            if ins:
                client.insert(pos, ins)
        if i % 50 == 0:  # acknowledge now and then, so the buffered op stays small
            while client.pending:
                client.receive_ack(client.version)
    assert client.text == trace["endContent"]

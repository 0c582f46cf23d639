"""The fast path for keystrokes: updates ``CrdtDocument`` knows will integrate whole, at once.

It applies them without pycrdt's transaction observer and keeps a decoded state vector up to
date by itself.  Whatever the mix of local edits, in-order, out-of-order and duplicate
deliveries, that vector must equal the document's real one whenever it is kept, the fast
path must be taken for in-order keystrokes, and documents must converge with snapshots that
lose nothing.  Seeded; the seed is in the test id and every failure message.
"""

from __future__ import annotations

import random

import pytest

from crdt.document import CrdtDocument
from crdt.updates import decode_state_vector
from tests.crdt.test_convergence import local_edit


def _check_cache(doc: CrdtDocument, seed: int, step: int) -> None:
    cached = doc._sv
    if cached is not None:
        real = decode_state_vector(doc.state_vector())
        assert {c: k for c, k in cached.items() if k} == real, (
            f"seed {seed} step {step}: kept state vector {cached} != document's {real}")


@pytest.mark.parametrize("seed", range(12))
def test_the_kept_state_vector_always_matches_and_documents_converge(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = 0
    real_apply = CrdtDocument._apply_certain

    def counting(self: CrdtDocument, update: bytes) -> bool:
        nonlocal taken
        taken += 1
        return real_apply(self, update)

    monkeypatch.setattr(CrdtDocument, "_apply_certain", counting)
    rng = random.Random(seed)
    docs = [CrdtDocument(client_id=i + 1) for i in range(3)]
    inbox: list[list[bytes]] = [[] for _ in docs]
    sent: list[bytes] = []
    for step in range(300):
        i = rng.randrange(len(docs))
        roll = rng.random()
        if roll < 0.45 or not inbox[i]:
            update = local_edit(docs[i], rng, seed)
            sent.append(update)
            for j in range(len(docs)):
                if j != i:
                    inbox[j].append(update)
        elif roll < 0.85:  # in order: what a server relays
            docs[i].apply_update(inbox[i].pop(0))
        elif roll < 0.95:  # out of order
            docs[i].apply_update(inbox[i].pop(rng.randrange(len(inbox[i]))))
        else:  # a duplicate of something already sent
            docs[i].apply_update(rng.choice(sent))
        _check_cache(docs[i], seed, step)
    for i, doc in enumerate(docs):
        for update in inbox[i]:
            doc.apply_update(update)
            _check_cache(doc, seed, -1)
    texts = {doc.text for doc in docs}
    assert len(texts) == 1, f"seed {seed}: diverged into {len(texts)} texts"
    snapshots = {CrdtDocument.from_snapshot(doc.snapshot()).text for doc in docs}
    assert snapshots == texts, f"seed {seed}: a snapshot lost something"
    assert taken > 0, f"seed {seed}: no update took the fast path"


def test_a_keystroke_whose_origin_is_missing_waits_and_is_kept() -> None:
    author = CrdtDocument(client_id=1)
    first = author.insert(0, "ab")
    second = author.insert(2, "c")  # its origin is in `first`
    server = CrdtDocument(client_id=9)
    assert server.apply_update(second)  # news, but it cannot integrate yet
    assert server.text == ""
    assert CrdtDocument.from_snapshot(server.snapshot()).text == ""
    assert server.apply_update(first)
    assert server.text == "abc"
    assert CrdtDocument.from_snapshot(server.snapshot()).text == "abc"


def test_a_duplicate_keystroke_brings_no_news() -> None:
    author = CrdtDocument(client_id=1)
    update = author.insert(0, "héllo 😀")
    server = CrdtDocument(client_id=9)
    assert server.apply_update(update)
    assert not server.apply_update(update)
    assert server.text == "héllo 😀"


def test_a_keystroke_next_to_text_the_document_lacks_waits_for_it() -> None:
    alice, bob = CrdtDocument(client_id=1), CrdtDocument(client_id=2)
    hers = alice.insert(0, "x")
    bob.apply_update(hers)
    his = bob.insert(1, "y")  # bob's first struct: its clock follows on, its origin is hers
    server = CrdtDocument(client_id=9)
    assert server.apply_update(his)
    assert server.text == ""
    assert server._sv is None or server._sv.get(2, 0) == 0  # not counted as integrated
    assert CrdtDocument.from_snapshot(server.snapshot()).text == ""
    assert server.apply_update(hers)
    assert server.text == "xy"
    assert CrdtDocument.from_snapshot(server.snapshot()).text == "xy"

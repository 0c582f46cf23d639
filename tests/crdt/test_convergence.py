"""Several documents editing at once, exchanging updates in random (even non-causal) orders.

Each document's text is compared with a ``str`` model after every local edit (so positions are
right), and all documents must end equal once every update reached everyone.  Seeded; the seed
is in the test id and in every failure message.
"""

from __future__ import annotations

import random

import pytest

from crdt.document import CrdtDocument
from crdt.errors import UpdateError

UNITS = [
    "a", "b", " ", "\n", "é", "e\u0301", "日本", "語", "😀", "👩\u200d👩\u200d👧", "🇫🇷",
    "\U0001d4b3",  # an astral letter
]


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(UNITS) for _ in range(rng.choice([1, 1, 2, 5, 30])))


def local_edit(doc: CrdtDocument, rng: random.Random, seed: int) -> bytes:
    model = doc.text
    if model and rng.random() < 0.4:
        pos = rng.randrange(len(model))
        length = rng.randint(1, min(len(model) - pos, 6))
        update = doc.delete(pos, length)
        expected = model[:pos] + model[pos + length :]
    elif model and rng.random() < 0.15:
        pos = rng.randrange(len(model))
        length = rng.randint(0, min(len(model) - pos, 4))
        text = random_text(rng)
        update = doc.splice(pos, length, text)
        expected = model[:pos] + text + model[pos + length :]
    else:
        pos = rng.randint(0, len(model))
        text = random_text(rng)
        update = doc.insert(pos, text)
        expected = model[:pos] + text + model[pos:]
    assert doc.text == expected, f"seed {seed}: local edit at {pos} went wrong"
    return update


@pytest.mark.parametrize("seed", range(10))
def test_documents_converge_whatever_the_delivery_order(seed: int) -> None:
    rng = random.Random(seed)
    docs = [CrdtDocument(client_id=i + 1) for i in range(4)]
    inbox: list[list[bytes]] = [[] for _ in docs]  # updates not yet delivered, in any order
    for _ in range(250):
        i = rng.randrange(len(docs))
        if rng.random() < 0.55 or not inbox[i]:
            update = local_edit(docs[i], rng, seed)
            for j in range(len(docs)):
                if j != i:
                    inbox[j].append(update)
        else:
            # deliver a random pending update: causal order is not guaranteed
            update = inbox[i].pop(rng.randrange(len(inbox[i])))
            docs[i].apply_update(update)
    for i, doc in enumerate(docs):
        rng.shuffle(inbox[i])
        for update in inbox[i]:
            doc.apply_update(update)
    texts = {doc.text for doc in docs}
    assert len(texts) == 1, f"seed {seed}: diverged into {len(texts)} texts"
    snapshots = [CrdtDocument.from_snapshot(doc.snapshot()).text for doc in docs]
    assert set(snapshots) == texts, f"seed {seed}: a snapshot lost something"


@pytest.mark.parametrize("seed", range(3))
def test_a_late_joiner_catches_up_from_a_document_holding_waiting_updates(seed: int) -> None:
    rng = random.Random(seed)
    a, b = CrdtDocument(client_id=1), CrdtDocument(client_id=2)
    updates = [local_edit(a, rng, seed) for _ in range(60)]
    hub = CrdtDocument(client_id=9)
    held = updates[: len(updates) // 2]
    for update in updates[len(updates) // 2 :]:
        hub.apply_update(update)  # most of these wait for the held-back half
    b.apply_update(hub.diff(b.state_vector()))
    for update in held:
        b.apply_update(update)
    assert b.text == a.text, f"seed {seed}"


@pytest.mark.parametrize("seed", range(3))
def test_mutated_updates_are_refused_whole_or_applied(seed: int) -> None:
    """Random byte damage: either a clean UpdateError with the document untouched, or accepted."""
    rng = random.Random(seed)
    source = CrdtDocument(client_id=5)
    samples = [local_edit(source, rng, seed) for _ in range(40)] + [source.snapshot()]
    for _ in range(400):
        doc = CrdtDocument(client_id=6)
        doc.apply_update(samples[0])
        before = (doc.text, doc.state_vector(), doc.snapshot())
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(data))
            if rng.random() < 0.6:
                data[k] = rng.randrange(256)
            else:
                del data[k]
        try:
            doc.apply_update(bytes(data))
        except UpdateError:
            after = (doc.text, doc.state_vector(), doc.snapshot())
            assert after == before, f"seed {seed}: {bytes(data)!r} half-applied"
        doc.insert(0, "ok")  # whatever happened, the document is still usable


@pytest.mark.parametrize("count", [40, 120])
def test_a_long_chain_delivered_newest_first_integrates_whole(count: int) -> None:
    """A replica resuming after a pause once wrote sixty updates of one client to the log in
    reverse; a reader holds all but the oldest pending, and the oldest's arrival must release
    the whole chain (it used to stop after 32 of them)."""
    other = CrdtDocument(client_id=1)
    writer = CrdtDocument(client_id=2)
    writer.apply_update(other.insert(0, "基"))
    updates = [writer.insert(len(writer.text), f"[{i}é😀]") for i in range(count)]
    if count > 40:  # deletes interleaved: delete sets must wait for their items too
        updates += [writer.delete(1, 4), writer.insert(0, "̀")]
    reader = CrdtDocument(client_id=3)
    reader.apply_update(other.snapshot())
    for update in reversed(updates):
        reader.apply_update(update)
    assert reader.text == writer.text
    assert reader.snapshot() and CrdtDocument.from_snapshot(reader.snapshot()).text == writer.text

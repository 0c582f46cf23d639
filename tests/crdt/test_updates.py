"""The structural scan of Yjs update bytes that runs before pycrdt sees them."""

from __future__ import annotations

import random

import pytest
from pycrdt import Array, Doc, Map, Text

from crdt.document import CrdtDocument
from crdt.errors import UpdateError
from crdt.updates import EMPTY_UPDATE, scan_update


def text_updates() -> list[bytes]:
    doc = CrdtDocument(client_id=3)
    return [doc.insert(0, "abc"), doc.insert(1, "é😀"), doc.delete(0, 2), doc.snapshot()]


def test_the_empty_update_is_empty() -> None:
    summary = scan_update(EMPTY_UPDATE)
    assert summary.empty and summary.plain_ascii and not summary.explicit_parent
    assert summary.ends == {}


def test_an_ascii_insert_is_plain_and_ends_after_its_text() -> None:
    doc = CrdtDocument(client_id=3)
    summary = scan_update(doc.insert(0, "abc"))
    assert not summary.empty and summary.plain_ascii and not summary.explicit_parent
    assert summary.ends == {3: 3}


def test_non_ascii_text_is_not_plain_and_counts_utf16_units() -> None:
    doc = CrdtDocument(client_id=3)
    summary = scan_update(doc.insert(0, "é😀"))  # Yjs clocks: é = 1, 😀 = 2
    assert not summary.plain_ascii
    assert summary.ends == {3: 3}


def test_a_deletion_covers_the_deleted_clocks() -> None:
    doc = CrdtDocument(client_id=3)
    doc.insert(0, "abcdef")
    summary = scan_update(doc.delete(1, 3))
    assert not summary.empty
    assert summary.ends == {3: 4}


def test_nested_types_are_not_plain_and_name_their_parent() -> None:
    doc: Doc = Doc(client_id=4)
    doc["m"] = m = Map()
    m["t"] = Text("x")
    doc["a"] = a = Array()
    a.append(1.5)
    a.append({"k": [True, None, "s"]})
    summary = scan_update(doc.get_update())
    assert not summary.plain_ascii
    assert summary.explicit_parent  # the inner text's first item names its parent by ID


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (b"", "unexpected end"),
        (b"\x80", "inside an integer"),
        (b"\xff" * 10, "exceeds 2\\*\\*53"),
        (b"\x09\x00", "9 client struct runs"),
        (b"\x01\x01\x01\x00\x1f", "unknown struct kind 31"),
        (b"\x01\x01\x01\x00\x00\x00\x00", "zero-length struct"),
        (b"\x01\x01\x01\x00\x04\x01\x04text\x05ab\x00", "runs past the end"),
        (b"\x01\x01\x01\x00\x04\x01\x04text\x02\xff\xfe\x00", "not valid UTF-8"),
        (b"\x01\x01\x01\x00\x07\x01\x04text\x09\x00", "unknown shared type 9"),
        (b"\x00\x01\x01\x01\x80\x80\x80\x80\x10\x01", "exceeds clock 2\\*\\*32"),
        (b"\x00\x00\xaa", "1 unexpected bytes"),
        (b"\x01\x01\x01\x00\x08\x01\x04text\x01\x55\x00", "unknown value tag"),
    ],
)
def test_malformed_updates_say_what_is_wrong(update: bytes, message: str) -> None:
    with pytest.raises(UpdateError, match=message):
        scan_update(update)


def test_a_huge_client_id_is_refused_before_yrs_can_truncate_it() -> None:
    client = b"\xff" * 7 + b"\x7f"  # 56 bits: beyond JavaScript's safe integers
    with pytest.raises(UpdateError, match="2\\*\\*53"):
        scan_update(b"\x01\x01" + client + b"\x00\x04\x01\x04text\x01a\x00")


def test_deeply_nested_values_are_refused_not_recursed_into() -> None:
    nested = b"\x75\x01" * 100 + b"\x7e"  # [[[...null...]]]
    with pytest.raises(UpdateError, match="nested deeper"):
        scan_update(b"\x01\x01\x01\x00\x08\x01\x01a\x01" + nested + b"\x00")


def test_every_real_update_scans_and_every_truncation_is_refused() -> None:
    for update in text_updates():
        scan_update(update)
        for cut in range(1, len(update)):
            with pytest.raises(UpdateError):
                scan_update(update[:cut])


def test_random_mutations_never_raise_anything_but_update_error() -> None:
    seed = 20240611
    rng = random.Random(seed)
    samples = text_updates()
    for _ in range(3000):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.5:
                data[i] = rng.randrange(256)
            elif choice < 0.75:
                del data[i]
            else:
                data.insert(i, rng.randrange(256))
        try:
            scan_update(bytes(data))
        except UpdateError:
            pass
        except Exception as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"seed {seed}: {bytes(data)!r} raised {exc!r}")

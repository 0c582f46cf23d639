"""SQLiteStore group commit: many writes in one transaction, each still failing alone, and
every write whose future resolved surviving a crash of the process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from server.errors import StorageError
from server.store import SQLiteStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def store(tmp_path: Path):
    s = SQLiteStore(tmp_path / "w.db")
    await s.open()
    yield s
    await s.close()


async def test_a_burst_of_appends_shares_few_transactions_and_loads_back_in_order(store):
    # 700 records: more than one multi-row insert, with a remainder of odd size.
    writes = [store.append("d", "crdt", seq, [f"r{seq}".encode()]) for seq in range(1, 701)]
    await asyncio.gather(*writes)
    doc = await store.load("d")
    assert doc.log == tuple(f"r{seq}".encode() for seq in range(1, 701))
    assert doc.next_seq == 701
    assert store.metrics.store_commits <= 3
    assert store.metrics.store_records == 700


async def test_appends_of_several_documents_interleaved_in_one_batch_stay_apart(store):
    writes = [store.append(f"d{i % 3}", "ot", i // 3 + 1, [bytes([i])]) for i in range(90)]
    await asyncio.gather(*writes)
    for d in range(3):
        doc = await store.load(f"d{d}")
        assert doc.log == tuple(bytes([i]) for i in range(d, 90, 3))


async def test_a_compaction_queued_between_appends_applies_in_call_order(store):
    await asyncio.gather(
        store.append("d", "ot", 1, [b"1", b"2"]),
        store.compact("d", "ot", b"snap", 2),
        store.append("d", "ot", 3, [b"3"]),
    )
    doc = await store.load("d")
    assert (doc.snapshot, doc.log, doc.next_seq) == (b"snap", (b"3",), 4)


async def test_a_duplicate_sequence_number_in_a_big_batch_fails_only_its_write(store):
    await store.append("d", "crdt", 5, [b"first"])
    writes = [store.append("d", "crdt", seq, [f"r{seq}".encode()]) for seq in range(1, 200)
              if seq != 5]
    duplicate = store.append("d", "crdt", 5, [b"again"])
    results = await asyncio.gather(*writes, duplicate, return_exceptions=True)
    assert all(r is None for r in results[:-1])
    assert isinstance(results[-1], StorageError)
    doc = await store.load("d")
    assert len(doc.log) == 199 and doc.log[4] == b"first"


async def test_a_remembered_kind_still_refuses_the_other_engine(store):
    await store.append("d", "ot", 1, [b"x"])  # committed: the store remembers "ot"
    results = await asyncio.gather(
        store.append("e", "crdt", 1, [b"fine"]),
        store.append("d", "crdt", 2, [b"wrong kind"]),
        store.append("d", "ot", 2, [b"y"]),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], StorageError) and "ot document" in str(results[1])
    assert (await store.load("d")).log == (b"x", b"y")


async def test_a_deleted_name_can_be_reused_by_the_other_engine_in_the_same_batch(store):
    await store.append("d", "ot", 1, [b"x"])
    await asyncio.gather(store.delete("d"), store.append("d", "crdt", 1, [b"y"]))
    assert await store.kind_of("d") == "crdt"
    assert (await store.load("d")).log == (b"y",)
    await store.append("d", "crdt", 2, [b"z"])  # the remembered kind follows the delete
    with pytest.raises(StorageError, match="crdt document"):
        await store.append("d", "ot", 3, [b"no"])


CRASHING_WRITER = textwrap.dedent("""
    import asyncio, os, sys
    from pathlib import Path
    from server.store import SQLiteStore

    async def main(path):
        store = SQLiteStore(Path(path))
        await store.open()
        writes = [store.append("d", "crdt", seq, [b"r%d" % seq]) for seq in range(1, 401)]
        await asyncio.gather(*writes)  # every future resolved: every record is durable
        os._exit(0)  # a crash: no close(), no flush, no checkpoint

    asyncio.run(main(sys.argv[1]))
""")


async def test_every_acknowledged_write_survives_a_crash(tmp_path: Path):
    path = tmp_path / "w.db"
    proc = subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    reopened = SQLiteStore(path)
    await reopened.open()
    try:
        doc = await reopened.load("d")
        assert doc is not None
        assert doc.log == tuple(b"r%d" % seq for seq in range(1, 401))
    finally:
        await reopened.close()

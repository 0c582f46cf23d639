"""Embedding: a note app runs the server in its own loop and edits documents in-process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from engines.ot_engine import OTCommitted
from server import Config, WeftServer
from server.client import OTConnection

ROOT = Path(__file__).resolve().parents[2]


async def test_in_process_edits_and_change_events_match_what_clients_see():
    async with WeftServer(Config(port=0, data_dir=None, web_root=None)) as server:
        await server.edit("notes/e", insert="hello", pos=0, engine="ot")
        conn = await OTConnection.connect(server.url + "/ot")
        doc = await conn.open("notes", "e")
        async with server.changes("notes/e") as changes:
            doc.insert(5, " world")
            event = await asyncio.wait_for(changes.get(), 5)
        assert (event.doc, event.kind) == ("notes/e", "ot")
        (committed,) = event.payloads
        assert isinstance(committed, OTCommitted) and committed.op == [5, " world"]
        assert await server.text("notes/e") == "hello world"
        await server.edit("notes/e", pos=0, delete=6)
        await doc.wait_for(lambda t: t == "world")
        await conn.close()


def test_the_embedding_example_runs():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "embed.py")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "shopping: 'eggs\\nmilk 🥛\\n'" in result.stdout

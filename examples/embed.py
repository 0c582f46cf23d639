"""Embed Weft in your own asyncio program: run the server, edit documents in-process, and
follow the same changes connected clients see.

    .venv/bin/python examples/embed.py

It starts a server on a free port (documents in memory), creates a CRDT note and an OT note,
connects a Python client to each as a browser would, and edits from both sides.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from server import Config, WeftServer
from server.client import CRDTClient, OTConnection


async def main() -> None:
    async with WeftServer(Config(port=0, data_dir=None, web_root=None)) as server:
        print("serving on", server.url)

        # Server-side edits, in code points; `engine` creates a missing document.
        await server.edit("notes/shopping", insert="eggs\n", pos=0, engine="crdt")
        await server.edit("notes/todo", insert="write report\n", pos=0, engine="ot")

        # A client connects (a browser would use y-websocket / sharedb the same way).
        browser = await CRDTClient.connect(server.url + "/crdt", "notes/shopping")
        conn = await OTConnection.connect(server.url + "/ot")
        todo = await conn.open("notes", "todo")

        async with server.changes("notes/shopping") as changes:
            browser.insert(len(browser.text), "milk 🥛\n")  # the client types...
            event = await asyncio.wait_for(changes.get(), 5)  # ...and the app hears it
            print(f"change to {event.doc} ({event.kind}) by {event.author}")

        await server.edit("notes/todo", insert="☑ ", pos=0)
        await todo.wait_for(lambda text: text is not None and text.startswith("☑"))

        print("shopping:", repr(await server.text("notes/shopping")))
        print("todo:    ", repr(await server.text("notes/todo")), "seen by client:",
              repr(todo.text))
        print("info:", await server.info("notes/todo"))
        await browser.close()
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())

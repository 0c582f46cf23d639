"""Drive the npm test clients (tests/npm/*.js) over stdin/stdout JSON lines."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

NPM_DIR = Path(__file__).resolve().parents[1] / "npm"
NODE = shutil.which("node")


class NodeCommandError(AssertionError):
    """The node client answered a command with ok: false."""


class NodeClient:
    """One node process running a client script; ``call`` sends a command and awaits its reply."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.events: list[dict[str, Any]] = []
        self._event_added = asyncio.Event()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self.stderr: list[str] = []
        self._err_reader = asyncio.get_running_loop().create_task(self._read_stderr())

    @classmethod
    async def start(cls, script: str, *args: str) -> NodeClient:
        assert NODE is not None, "node is required for the npm interop tests"
        proc = await asyncio.create_subprocess_exec(
            NODE, str(NPM_DIR / script), *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=NPM_DIR,
        )
        return cls(proc, script)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            if "event" in message:
                self.events.append(message)
                self._event_added.set()
            elif message.get("id") in self._pending:
                self._pending.pop(message["id"]).set_result(message)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(EOFError(f"{self.name} exited: {''.join(self.stderr)}"))

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr.append(line.decode(errors="replace"))

    async def call(self, cmd: str, timeout: float = 15, **args: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"id": request_id, "cmd": cmd, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        reply = await asyncio.wait_for(future, timeout)
        if not reply.get("ok"):
            raise NodeCommandError(f"{self.name} {cmd}: {reply.get('error')}")
        return reply

    async def event(self, name: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        """The first event called ``name`` whose fields include ``match`` (waits for it)."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if event["event"] == name and all(event.get(k) == v for k, v in match.items()):
                        return event
                self._event_added.clear()
                await self._event_added.wait()

    async def close(self) -> None:
        if self.proc.returncode is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                await asyncio.wait_for(self.proc.wait(), 3)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                self.proc.kill()
                await self.proc.wait()
        self._reader.cancel()
        self._err_reader.cancel()

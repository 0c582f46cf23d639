"""Drive tests/meta/meta_clients.js: a real npm client speaking the metadata extension."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("meta_clients.js")
NODE = shutil.which("node")


class MetaNode:
    """One node process: ``send`` a request, ``expect`` a message matching a predicate."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.messages: list[dict[str, Any]] = []
        self._seen = 0

    @classmethod
    async def start(cls, mode: str, url: str, *names: str) -> MetaNode:
        assert NODE is not None
        proc = await asyncio.create_subprocess_exec(
            NODE, str(SCRIPT), mode, url, *names, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        client = cls(proc)
        await client.expect(lambda m: m.get("ready") is True)
        return client

    async def send(self, request: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        await self.proc.stdin.drain()

    async def expect(self, predicate: Callable[[dict[str, Any]], bool],
                     timeout: float = 10.0) -> dict[str, Any]:
        """The first message (not yet matched) for which ``predicate`` holds."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                for message in self.messages:
                    if not message.get("_used") and predicate(message):
                        message["_used"] = True
                        return message
                line = await self.proc.stdout.readline()
                if not line:
                    raise EOFError(f"node client exited; got {self.messages}")
                self.messages.append(json.loads(line))

    async def request(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.send(request)
        return await self.expect(lambda m: m.get("id") == request["id"])

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

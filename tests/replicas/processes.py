"""Replicas as real ``weft serve`` subprocesses, for tests that must crash or freeze one.

An in-process :class:`~server.app.WeftServer` cannot be killed with ``SIGKILL`` or frozen with
``SIGSTOP`` without taking the test with it; a subprocess can.  Each replica listens on its own
free loopback port, keeps nothing on disk (``--data-dir :memory:`` — Redis is the store) and
has no rate limit (tests type faster than people).  Its output is kept for failure messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from tests.replicas.conftest import RedisProcess, free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0  # seconds: imports are slow on a loaded 2-core machine


class ReplicaProcess:
    """One ``python -m server serve --redis … --replica-id …`` process; restartable."""

    def __init__(self, redis: RedisProcess, replica_id: str) -> None:
        self.redis = redis
        self.replica_id = replica_id
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.output: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        """Start and wait for the "listening" line (bounded by :data:`START_TIMEOUT`)."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server", "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--data-dir", ":memory:", "--redis", self.redis.url,
            "--replica-id", self.replica_id, "--max-ops-per-second", "0",
            "--room-idle-seconds", "60", "--log-level", "warning",
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        listening = asyncio.get_running_loop().create_future()
        self._reader = asyncio.get_running_loop().create_task(self._read(listening))
        try:
            await asyncio.wait_for(asyncio.shield(listening), START_TIMEOUT)
        except TimeoutError:
            await self.kill()
            raise RuntimeError(f"replica {self.replica_id} did not start:\n{self.log}") from None
        if not listening.result():
            raise RuntimeError(f"replica {self.replica_id} exited:\n{self.log}")

    async def _read(self, listening: asyncio.Future[bool]) -> None:
        process = self.process
        assert process is not None and process.stdout is not None
        while line := await process.stdout.readline():
            decoded = line.decode(errors="replace").rstrip()
            self.output.append(decoded)
            if "weft: listening on" in decoded and not listening.done():
                listening.set_result(True)
        if not listening.done():
            listening.set_result(False)

    @property
    def log(self) -> str:
        return "\n".join(self.output[-60:])

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(sig)

    async def kill(self) -> None:
        """``SIGKILL``: no flush, no close frames — a crash."""
        process, self.process = self.process, None  # not "running" from the signal on
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signal.SIGCONT)  # a frozen process must not stay frozen
            process.kill()
        await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._reader, 5)

    async def stop(self, timeout: float = 15.0) -> None:
        """``SIGTERM``: a clean shutdown (killed if it takes longer than ``timeout``)."""
        process = self.process
        if process is None or process.returncode is not None:
            await self.kill()
            return
        process.send_signal(signal.SIGCONT)
        process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout)
        await self.kill()


async def start_replicas(redis: RedisProcess, names: list[str]) -> list[ReplicaProcess]:
    """Start several replica processes concurrently (startup is mostly imports)."""
    replicas = [ReplicaProcess(redis, name) for name in names]
    try:
        await asyncio.gather(*(r.start() for r in replicas))
    except BaseException:
        await asyncio.gather(*(r.kill() for r in replicas), return_exceptions=True)
        raise
    return replicas

"""Fixtures for the browser tests: the real Weft server, headless system Chromium, editors.

The server runs as a subprocess (`python -m server serve`) on a free loopback port with a
temporary data directory, serving the built client from web_client/dist (scripts/test builds
it). Set WEFT_BROWSER_SERVER=http://host:port to drive an already running server instead.
Chromium is Debian's /usr/bin/chromium (never `playwright install`); screenshots go to
artifacts/browser/.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="Python Playwright is not installed (pip install -e '.[dev]')"
)

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "web_client" / "dist"
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM = Path(os.environ.get("WEFT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SERVER_START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WeftProcess:
    """`python -m server serve` on a fixed loopback port and data directory; restartable."""

    def __init__(self, port: int, data_dir: Path, log: Path,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.port, self.data_dir, self.log = port, data_dir, log
        self.extra_args = extra_args  # e.g. ("--redis", url, "--replica-id", "r1")
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "server", "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--data-dir", str(self.data_dir), *self.extra_args,
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"weft server exited with {self.proc.returncode}:\n{self.log.read_text()}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"weft server not healthy after {SERVER_START_TIMEOUT_S}s:\n{self.log.read_text()}"
        )

    def stop(self) -> None:
        """SIGTERM: the server closes connections (1001) and flushes its store."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def new_weft_process(tmp_path_factory: pytest.TempPathFactory) -> WeftProcess:
    if not (DIST / "index.html").is_file():
        pytest.fail("web_client/dist is not built: run `npm ci && npm run build` in web_client "
                    "(./scripts/test does it)")
    workdir = tmp_path_factory.mktemp("weft-server")
    return WeftProcess(free_port(), workdir / "data", workdir / "server.log")


@pytest.fixture(scope="session")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a running Weft server that serves the built web client at /."""
    external = os.environ.get("WEFT_BROWSER_SERVER")
    if external:
        yield external.rstrip("/")
        return
    server = new_weft_process(tmp_path_factory)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeftProcess]:
    """A server for one test alone, which the test may stop and start again."""
    server = new_weft_process(tmp_path_factory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; scripts/test does it)")
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def doc_name(request: pytest.FixtureRequest) -> str:
    """A fresh document per test (the server lives for the whole session)."""
    return f"{request.node.name.split('[')[0][5:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

"""Drives one browser user of the Weft web client: a Playwright page in its own context.

Each user gets a separate browser context (its own cookies, storage and network), which is what
makes `set_offline` cut exactly one user off. The page exposes a small read-only handle,
`window.weft` (text(), stats(), view), that tests use to read state; typing goes through the
real keyboard so CodeMirror sees the same input events as with a person.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from playwright.async_api import Browser, BrowserContext, Page

CONVERGE_TIMEOUT_S = 20.0


@dataclass
class Editor:
    """One user with the editor open on one document."""

    name: str
    context: BrowserContext
    page: Page
    page_errors: list[str] = field(default_factory=list)

    @classmethod
    async def open(
        cls, browser: Browser, base_url: str, doc: str, engine: str | None, name: str,
        *, wait_connected: bool = True,
    ) -> Editor:
        context = await browser.new_context(viewport={"width": 1000, "height": 560})
        page = await context.new_page()
        editor = cls(name, context, page)
        page.on("pageerror", lambda exc: editor.page_errors.append(str(exc)))
        query = {"doc": doc, "name": name}
        if engine is not None:
            query["engine"] = engine
        await page.goto(f"{base_url}/?{urlencode(query)}")
        await page.wait_for_function("() => window.weft !== undefined", timeout=10_000)
        if wait_connected:
            await editor.wait_for(
                "s => s.editable && s.connection === 'connected'", "connected and editable"
            )
            await page.wait_for_selector('.cm-content[contenteditable="true"]', timeout=5_000)
        return editor

    async def close(self) -> None:
        await self.context.close()

    async def text(self) -> str:
        return str(await self.page.evaluate("() => weft.text()"))

    async def stats(self) -> dict[str, Any]:
        result = await self.page.evaluate("() => weft.stats()")
        assert isinstance(result, dict)
        return result

    async def wait_for(self, predicate_js: str, what: str, timeout_s: float = 15.0) -> None:
        """Waits until `predicate_js` (a JS function of weft.stats()) holds."""
        try:
            await self.page.wait_for_function(
                f"() => ({predicate_js})(weft.stats())", timeout=timeout_s * 1000, polling=50
            )
        except Exception as exc:
            raise AssertionError(
                f"{self.name}: not {what} after {timeout_s}s; stats={await self.stats()}"
            ) from exc

    async def focus(self) -> None:
        await self.page.evaluate("() => weft.view.focus()")

    async def type_at_start(self, text: str, delay_ms: float = 15) -> None:
        await self.focus()
        await self.page.keyboard.press("Control+Home")
        await self.page.keyboard.type(text, delay=delay_ms)

    async def type_at_end(self, text: str, delay_ms: float = 15) -> None:
        await self.focus()
        await self.page.keyboard.press("Control+End")
        await self.page.keyboard.type(text, delay=delay_ms)

    async def select(self, anchor: int, head: int | None = None) -> None:
        """Puts the selection at UTF-16 offsets (the editor's own unit)."""
        await self.focus()
        await self.page.evaluate(
            "([a, h]) => weft.view.dispatch({selection: {anchor: a, head: h}})",
            [anchor, anchor if head is None else head],
        )

    async def utf16_index_after(self, needle: str) -> int:
        """UTF-16 offset just after the first `needle` in the editor's text."""
        index = await self.page.evaluate(
            "(n) => { const i = weft.text().indexOf(n); return i < 0 ? -1 : i + n.length }", needle
        )
        assert index >= 0, f"{needle!r} is not in {await self.text()!r}"
        return int(index)

    async def set_offline(self, offline: bool) -> None:
        await self.context.set_offline(offline)

    async def editable(self) -> bool:
        value = await self.page.get_attribute(".cm-content", "contenteditable")
        return value == "true"


async def wait_converged(*editors: Editor, timeout_s: float = CONVERGE_TIMEOUT_S) -> str:
    """Waits until every editor is connected, has nothing unsent and shows the same text."""
    deadline = time.monotonic() + timeout_s
    while True:
        texts = [await e.text() for e in editors]
        stats = [await e.stats() for e in editors]
        settled = all(s["connection"] == "connected" and s["pending"] == 0 for s in stats)
        if settled and all(t == texts[0] for t in texts):
            return texts[0]
        if time.monotonic() > deadline:
            detail = "\n".join(
                f"  {e.name}: {t!r} {s}" for e, t, s in zip(editors, texts, stats, strict=True)
            )
            raise AssertionError(f"editors did not converge in {timeout_s}s:\n{detail}")
        await asyncio.sleep(0.1)

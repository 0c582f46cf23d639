"""Other editors' cursors: drawn with their name and colour, kept in place through edits.

OT cursors are drawn by src/presence.js (`.weft-caret[data-name]`), CRDT cursors by
y-codemirror.next (`.cm-ySelectionCaret` holding `.cm-ySelectionInfo`). Screenshots of both
users' pages, and of the two side by side, are saved under artifacts/browser/.
"""

from __future__ import annotations

import base64

import pytest

from tests.browser.editor import Editor, wait_converged

CARET = {
    "ot": '.weft-caret[data-name="{name}"]',
    "crdt": '.cm-ySelectionCaret:has(.cm-ySelectionInfo:text-is("{name}"))',
}
SELECTION = {"ot": ".weft-selection", "crdt": ".cm-ySelection"}


# Document offset (UTF-16) at which `name`'s caret is drawn, or -1 if it is not drawn.
CARET_POSITION_JS = """([engine, name]) => {
  const carets = engine === 'ot'
    ? [...document.querySelectorAll('.weft-caret')].filter(el => el.dataset.name === name)
    : [...document.querySelectorAll('.cm-ySelectionCaret')]
        .filter(el => el.querySelector('.cm-ySelectionInfo')?.textContent === name)
  return carets.length === 1 ? weft.view.posAtDOM(carets[0]) : -1
}"""


async def caret_position(editor: Editor, engine: str, name: str) -> int:
    return int(await editor.page.evaluate(CARET_POSITION_JS, [engine, name]))


async def side_by_side(browser, left: bytes, right: bytes, path) -> None:
    """Saves one image showing two screenshots next to each other."""
    page = await browser.new_page(viewport={"width": 2010, "height": 570})
    images = "".join(
        f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}" '
        'style="border:1px solid #888;margin:2px">'
        for png in (left, right)
    )
    await page.set_content(f'<body style="margin:0;display:flex;background:#888">{images}</body>')
    await page.screenshot(path=str(path))
    await page.close()


@pytest.mark.parametrize("engine", ["crdt", "ot"])
async def test_remote_cursor_shows_name_and_follows_edits(
    browser, base_url, doc_name, engine, artifacts
):
    alice = await Editor.open(browser, base_url, doc_name, engine, "Alice")
    bob = await Editor.open(browser, base_url, doc_name, engine, "Bob")
    await alice.type_at_end("Shared notes 📝\nThe quick brown fox jumps over the lazy dog.\n")
    await wait_converged(alice, bob)

    # Bob selects "brown"; Alice puts her cursor after "lazy".
    start = await bob.utf16_index_after("quick ")
    await bob.select(start, start + len("brown"))
    await alice.select(await alice.utf16_index_after("lazy"))

    bob_caret = alice.page.locator(CARET[engine].format(name="Bob"))
    alice_caret = bob.page.locator(CARET[engine].format(name="Alice"))
    await bob_caret.wait_for(state="visible", timeout=10_000)
    await alice_caret.wait_for(state="visible", timeout=10_000)
    assert await alice.page.locator(SELECTION[engine]).count() >= 1
    assert await caret_position(alice, engine, "Bob") == start + len("brown")

    # Alice types before Bob's selection: his caret must move along in her view.
    await alice.type_at_start(">> ")
    await wait_converged(alice, bob)
    moved = start + len("brown") + len(">> ")
    await alice.page.wait_for_function(
        f"([engine, name, pos]) => ({CARET_POSITION_JS})([engine, name]) === pos",
        arg=[engine, "Bob", moved],
        timeout=10_000,
    )
    await bob.focus()
    await alice.focus()

    left = await alice.page.screenshot(path=str(artifacts / f"{engine}-alice.png"))
    right = await bob.page.screenshot(path=str(artifacts / f"{engine}-bob.png"))
    await side_by_side(browser, left, right, artifacts / f"{engine}-two-editors.png")
    assert alice.page_errors == [] and bob.page_errors == []


@pytest.mark.parametrize("engine", ["crdt", "ot"])
async def test_remote_cursor_disappears_when_the_other_editor_leaves(
    browser, base_url, doc_name, engine
):
    alice = await Editor.open(browser, base_url, doc_name, engine, "Alice")
    bob = await Editor.open(browser, base_url, doc_name, engine, "Bob")
    await bob.type_at_end("hello")
    await wait_converged(alice, bob)
    caret = alice.page.locator(CARET[engine].format(name="Bob"))
    await caret.wait_for(state="visible", timeout=10_000)

    await bob.close()

    await caret.wait_for(state="detached", timeout=40_000)
    await alice.wait_for("s => s.editors === 1", "alone", timeout_s=40)

"""Two people edit one document in two browsers: concurrent typing, offline, emoji.

Every test runs for both engines: the same page, the same keystrokes, the Yjs or the ShareDB
client underneath. Expected texts are exact: each user types at a fixed place (start or end),
so any lost, duplicated or misplaced character fails the comparison.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.browser.editor import Editor, wait_converged

ENGINES = ["crdt", "ot"]


def no_page_errors(*editors: Editor) -> None:
    for editor in editors:
        assert editor.page_errors == [], f"{editor.name}'s page raised: {editor.page_errors}"


@pytest.mark.parametrize("engine", ENGINES)
async def test_concurrent_typing_converges_to_both_edits(browser, base_url, doc_name, engine):
    alice = await Editor.open(browser, base_url, doc_name, engine, "Alice")
    bob = await Editor.open(browser, base_url, doc_name, engine, "Bob")
    await alice.type_at_start("|")
    await wait_converged(alice, bob)

    await asyncio.gather(
        alice.type_at_start("Alice was here. "),
        bob.type_at_end(" Bob too!"),
    )

    assert await wait_converged(alice, bob) == "Alice was here. | Bob too!"
    no_page_errors(alice, bob)


@pytest.mark.parametrize("engine", ENGINES)
async def test_typing_into_the_same_spot_keeps_every_character(browser, base_url, doc_name, engine):
    alice = await Editor.open(browser, base_url, doc_name, engine, "Alice")
    bob = await Editor.open(browser, base_url, doc_name, engine, "Bob")

    await asyncio.gather(alice.type_at_start("aaaaaaaaaa", 5), bob.type_at_start("bbbbbbbbbb", 5))

    text = await wait_converged(alice, bob)
    assert sorted(text) == sorted("a" * 10 + "b" * 10), text
    no_page_errors(alice, bob)


@pytest.mark.parametrize("engine", ENGINES)
async def test_offline_editor_keeps_typing_and_merges_on_reconnect(
    browser, base_url, doc_name, engine, artifacts
):
    alice = await Editor.open(browser, base_url, doc_name, engine, "Alice")
    bob = await Editor.open(browser, base_url, doc_name, engine, "Bob")
    await alice.type_at_start("|")
    await wait_converged(alice, bob)

    await alice.set_offline(True)
    await alice.wait_for("s => s.connection === 'offline'", "shown offline")
    await asyncio.gather(
        alice.type_at_start("typed offline; "),
        bob.type_at_end(" typed online"),
    )
    await alice.wait_for("s => s.connection === 'offline' && s.pending > 0",
                         "offline with pending edits")
    await bob.wait_for("s => s.pending === 0", "saved")
    assert await alice.text() == "typed offline; |"
    assert await bob.text() == "| typed online"
    badge = alice.page.locator('[data-field="connection"]')
    assert await badge.get_attribute("data-connection") == "offline"
    assert "waiting to be sent" in await alice.page.inner_text('[data-field="pending"]')
    await alice.page.screenshot(path=str(artifacts / f"{engine}-offline.png"))

    await alice.set_offline(False)

    assert await wait_converged(alice, bob) == "typed offline; | typed online"
    no_page_errors(alice, bob)


@pytest.mark.parametrize("engine", ENGINES)
async def test_emoji_and_other_scripts_arrive_intact(browser, base_url, doc_name, engine):
    alice = await Editor.open(browser, base_url, doc_name, engine, "Alice")
    bob = await Editor.open(browser, base_url, doc_name, engine, "Bob")

    typed = "héllo 👋🏽 日本語 e\u0301 𝄞 🇫🇷!"
    await alice.type_at_end(typed)
    assert await wait_converged(alice, bob) == typed

    # Bob types right after the waving hand: its offset differs in UTF-16 and code points.
    await bob.select(await bob.utf16_index_after("👋🏽"))
    await bob.page.keyboard.type("🎉x")
    expected = "héllo 👋🏽🎉x 日本語 e\u0301 𝄞 🇫🇷!"
    assert await wait_converged(alice, bob) == expected

    # Alice deletes the musical symbol (one code point, two UTF-16 units) with Backspace.
    await alice.select(await alice.utf16_index_after("𝄞"))
    await alice.page.keyboard.press("Backspace")
    assert await wait_converged(alice, bob) == expected.replace("𝄞", "")
    no_page_errors(alice, bob)


@pytest.mark.parametrize("engine", ENGINES)
async def test_editors_reconnect_after_a_server_restart_and_lose_nothing(
    browser, own_server, doc_name, engine
):
    alice = await Editor.open(browser, own_server.url, doc_name, engine, "Alice")
    bob = await Editor.open(browser, own_server.url, doc_name, engine, "Bob")
    await alice.type_at_start("saved before the restart|")
    await wait_converged(alice, bob)

    own_server.stop()
    for editor in (alice, bob):
        await editor.wait_for("s => s.connection === 'reconnecting'", "reconnecting")
    await asyncio.gather(alice.type_at_start("A: "), bob.type_at_end(" :B"))
    await alice.wait_for("s => s.pending > 0", "holding unsent edits")
    own_server.start()

    assert await wait_converged(alice, bob) == "A: saved before the restart| :B"
    no_page_errors(alice, bob)

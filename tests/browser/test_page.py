"""The page around the editor: picking a document, the status panel, engine refusals."""

from __future__ import annotations

import re

import pytest

from tests.browser.editor import Editor, wait_converged


async def test_root_shows_the_document_picker(browser, base_url, doc_name):
    page = await browser.new_page()
    await page.goto(f"{base_url}/")
    await page.fill('#open-form input[name="doc"]', doc_name)
    await page.select_option('#open-form select[name="engine"]', "ot")
    await page.click('#open-form button[type="submit"]')

    await page.wait_for_url(re.compile(rf"\?doc={doc_name}&engine=ot"))
    await page.wait_for_function("() => window.weft && weft.stats().connection === 'connected'")
    assert await page.inner_text("#doc-title") == doc_name


@pytest.mark.parametrize(("engine", "size_label"), [("crdt", "State size"), ("ot", "Version")])
async def test_status_panel_shows_engine_editors_size_and_round_trip(
    browser, base_url, doc_name, engine, size_label
):
    alice = await Editor.open(browser, base_url, doc_name, engine, "Alice")
    bob = await Editor.open(browser, base_url, doc_name, engine, "Bob")
    await alice.type_at_end("abc")
    await wait_converged(alice, bob)
    await alice.wait_for("s => s.editors === 2 && s.latencyMs !== null", "two editors, timed")

    panel = alice.page.locator("#status")
    assert await panel.locator('[data-field="connection"]').inner_text() == "Connected"
    assert await panel.locator('[data-field="pending"]').inner_text() == "All edits saved"
    assert await panel.locator('[data-field="engine"]').get_attribute("data-engine") == engine
    assert await panel.locator('[data-field="size-label"]').inner_text() == size_label
    size = await panel.locator('[data-field="size"]').inner_text()
    assert re.fullmatch(r"\d+( B| KiB)?", size), size
    assert await panel.locator('[data-field="editors"]').inner_text() == "2"
    assert re.fullmatch(r"\d+ ms", await panel.locator('[data-field="latency"]').inner_text())
    assert await panel.locator('[data-field="user"]').inner_text() == "Alice"


@pytest.mark.parametrize(("created_with", "opened_with"), [("crdt", "ot"), ("ot", "crdt")])
async def test_opening_with_the_other_engine_is_refused_and_said_plainly(
    browser, base_url, doc_name, created_with, opened_with, artifacts
):
    owner = await Editor.open(browser, base_url, doc_name, created_with, "Alice")
    await owner.type_at_end("mine")
    assert await wait_converged(owner) == "mine"

    intruder = await Editor.open(browser, base_url, doc_name, opened_with, "Bob",
                                 wait_connected=False)

    await intruder.wait_for("s => s.connection === 'refused'", "refused")
    banner = intruder.page.locator("#banner")
    await banner.wait_for(state="visible")
    assert f"cannot be opened with {opened_with.upper()}" in await banner.inner_text()
    assert await intruder.page.locator('[data-field="connection"]').inner_text() == (
        "Refused by the server"
    )
    assert not await intruder.editable()
    await intruder.page.screenshot(path=str(artifacts / f"refused-{opened_with}.png"))
    assert await owner.text() == "mine"


async def test_without_an_engine_in_the_url_the_documents_own_engine_is_used(
    browser, base_url, doc_name
):
    owner = await Editor.open(browser, base_url, doc_name, "ot", "Alice")
    await owner.type_at_end("made with OT")
    assert await wait_converged(owner) == "made with OT"

    visitor = await Editor.open(browser, base_url, doc_name, None, "Bob")

    assert (await visitor.stats())["engine"] == "ot"
    assert "engine=ot" in visitor.page.url
    assert await wait_converged(owner, visitor) == "made with OT"


async def test_an_invalid_document_name_is_explained_instead_of_opened(browser, base_url):
    page = await browser.new_page()
    await page.goto(f"{base_url}/?doc=a%2Fb&engine=crdt")

    await page.locator("#banner").wait_for(state="visible")
    assert "is not a document name here" in await page.inner_text("#banner")
    assert await page.get_attribute("body", "data-page") == "picker"
    assert await page.evaluate("() => window.weft === undefined")

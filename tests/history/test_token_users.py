"""A token's ``user`` claim names the author of every edit made with it, so a protocol client's
edits can be undone by that user's name (and nobody may speak for another user)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from server.app import WeftServer
from server.auth import Authenticator, Unauthorized, _b64encode, _sign, mint_token
from server.client import CRDTClient, OTConnection
from tests.server.conftest import make_config
from tests.server.test_auth_endpoints import http

SECRET = "s3cret"


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[WeftServer]:
    async with WeftServer(make_config(tmp_path, auth_secret=SECRET)) as running:
        yield running


def test_the_user_claim_round_trips_and_is_optional() -> None:
    auth = Authenticator(SECRET)
    assert auth.grant(mint_token(SECRET, "n/*", user="ann 😀")).user == "ann 😀"
    assert auth.grant(mint_token(SECRET, "n/*")).user is None


def test_a_token_may_not_speak_for_another_user() -> None:
    grant = Authenticator(SECRET).grant(mint_token(SECRET, "n/*", user="ann"))
    assert grant.author(None, "server") == "ann"
    assert grant.author("ann", "server") == "ann"
    with pytest.raises(Exception, match="speaks for 'ann'"):
        grant.author("bob", "server")


def test_an_oversized_or_non_string_user_is_refused() -> None:
    with pytest.raises(ValueError):
        mint_token(SECRET, "n/*", user="x" * 200)
    for user in (42, "", "x" * 200):
        body = "v1." + _b64encode(orjson.dumps({"doc": "n/*", "role": "write", "user": user}))
        with pytest.raises(Unauthorized, match="'user'"):
            Authenticator(SECRET).grant(f"{body}.{_sign(SECRET, body)}")


async def test_crdt_client_edits_carry_the_token_user_and_undo_by_name(secured: WeftServer):
    await secured.edit("n/c", pos=0, insert="base ", engine="crdt", author="server")
    ann = await CRDTClient.connect(secured.url + "/crdt", "n/c",
                                   token=mint_token(SECRET, "n/*", user="ann"))
    bob = await CRDTClient.connect(secured.url + "/crdt", "n/c",
                                   token=mint_token(SECRET, "n/*", user="bob"))
    try:
        await ann.wait_for(lambda t: t == "base ")
        ann.insert(5, "ann")
        await bob.wait_for(lambda t: t == "base ann")
        bob.insert(0, "Bob:")
        await ann.wait_for(lambda t: t == "Bob:base ann")
        history = await secured.history("n/c")
        assert [v["author"] for v in history["versions"]][-2:] == ["ann", "bob"]
        api = secured.url.replace("ws://", "http://") + "/api/docs/n%2Fc/undo"
        status, body = await asyncio.to_thread(http, api, "POST", {},
                                               mint_token(SECRET, "n/*", user="ann"))
        assert status == 200 and body["text"] == "Bob:base "
        await bob.wait_for(lambda t: t == "Bob:base ")
        status, body = await asyncio.to_thread(http, api, "POST", {"user": "bob"},
                                               mint_token(SECRET, "n/*", user="ann"))
        assert status == 403 and await secured.text("n/c") == "Bob:base "
    finally:
        await ann.close()
        await bob.close()


async def test_sharedb_client_edits_carry_the_token_user(secured: WeftServer):
    await secured.edit("n/o", pos=0, insert="héllo", engine="ot", author="server")
    conn = await OTConnection.connect(secured.url + "/ot",
                                      token=mint_token(SECRET, "n/*", user="cat"))
    try:
        doc = await conn.open("n", "o")
        await doc.wait_for(lambda t: t == "héllo")
        doc.insert(5, " 🐈")
        await doc.synced(timeout=10)
        history = await secured.history("n/o")
        assert history["versions"][-1]["author"] == "cat"
        await secured.undo("n/o", "cat")
        await doc.wait_for(lambda t: t == "héllo")
    finally:
        await conn.close()

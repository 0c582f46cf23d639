"""Tokens: minted with the secret, verified without a user table, scoped to documents."""

from __future__ import annotations

import time

import pytest

from server.auth import OPEN_GRANT, Authenticator, mint_token
from server.errors import Forbidden, ReadOnly, Unauthorized

SECRET = "s3cret"


def test_without_a_secret_everything_is_open():
    grant = Authenticator(None).grant(None)
    assert grant == OPEN_GRANT
    grant.check("any/doc", write=True)


def test_a_token_names_its_document_and_role():
    grant = Authenticator(SECRET).grant(mint_token(SECRET, "notes/a", "read"))
    assert (grant.pattern, grant.role) == ("notes/a", "read")
    grant.check("notes/a", write=False)


def test_a_read_token_cannot_write():
    grant = Authenticator(SECRET).grant(mint_token(SECRET, "notes/a", "read"))
    with pytest.raises(ReadOnly, match="read-only"):
        grant.check("notes/a", write=True)


def test_a_token_does_not_cover_other_documents():
    grant = Authenticator(SECRET).grant(mint_token(SECRET, "notes/a"))
    with pytest.raises(Forbidden):
        grant.check("notes/b", write=False)


def test_a_prefix_pattern_covers_documents_under_it():
    grant = Authenticator(SECRET).grant(mint_token(SECRET, "notes/*"))
    grant.check("notes/b", write=True)
    with pytest.raises(Forbidden):
        grant.check("other/b", write=False)


def test_a_missing_token_is_refused_when_auth_is_on():
    with pytest.raises(Unauthorized, match="needs a token"):
        Authenticator(SECRET).grant(None)


def test_a_token_signed_with_another_secret_is_refused():
    with pytest.raises(Unauthorized, match="signature"):
        Authenticator(SECRET).grant(mint_token("other", "notes/a"))


@pytest.mark.parametrize("token", ["", "garbage", "v1.a.b.c", "v2.x.y", "v1..", "v1.!!.sig"])
def test_malformed_tokens_are_refused(token):
    with pytest.raises(Unauthorized):
        Authenticator(SECRET).grant(token)


def test_a_tampered_payload_is_refused():
    token = mint_token(SECRET, "notes/a", "read")
    prefix, _, sig = token.split(".")
    forged = mint_token(SECRET, "*", "write").split(".")[1]
    with pytest.raises(Unauthorized, match="signature"):
        Authenticator(SECRET).grant(f"{prefix}.{forged}.{sig}")


def test_an_expired_token_is_refused():
    token = mint_token(SECRET, "notes/a", ttl=-1)
    with pytest.raises(Unauthorized, match="expired"):
        Authenticator(SECRET).grant(token)


def test_a_token_with_ttl_is_valid_until_then():
    grant = Authenticator(SECRET).grant(mint_token(SECRET, "notes/a", ttl=60))
    assert grant.expires is not None and grant.expires > time.time()


def test_minting_checks_its_arguments():
    with pytest.raises(ValueError):
        mint_token(SECRET, "notes/a", "admin")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        mint_token(SECRET, "")

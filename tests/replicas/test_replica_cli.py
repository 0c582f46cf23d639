"""``--redis`` / ``--replica-id`` (and their WEFT_* variables) switch store and relay to Redis."""

from __future__ import annotations

import pytest

from server.app import WeftServer
from server.cli import build_parser, config_from_args
from server.relay.local import LocalRelay
from server.relay.redis import RedisRelay
from server.store.redis import RedisStore


def test_redis_flags_select_the_redis_store_and_relay():
    args = build_parser().parse_args(
        ["serve", "--redis", "redis://127.0.0.1:1/0", "--replica-id", "east-1"])
    config = config_from_args(args)
    assert config.redis_url == "redis://127.0.0.1:1/0"
    server = WeftServer(config)
    assert isinstance(server.store, RedisStore)
    assert isinstance(server.relay, RedisRelay)
    assert server.relay.replica_id == "east-1"


def test_redis_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WEFT_REDIS_URL", "redis://127.0.0.1:2/0")
    config = config_from_args(build_parser().parse_args(["serve"]))
    assert config.redis_url == "redis://127.0.0.1:2/0"


def test_without_redis_nothing_changes(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("WEFT_REDIS_URL", raising=False)
    config = config_from_args(build_parser().parse_args(["serve", "--data-dir", ":memory:"]))
    assert config.redis_url is None
    assert isinstance(WeftServer(config).relay, LocalRelay)

"""The report's "servers under test" table says how each target really ran."""

from __future__ import annotations

from benchmarks.live.targets import peer_targets, weft_targets


def test_a_single_weft_server_is_described_with_its_sqlite_store():
    for target in weft_targets():
        assert "SQLite store" in target.describe(1)


def test_weft_replicas_are_described_as_redis_backed_not_sqlite():
    for target in weft_targets():
        text = target.describe(3)
        assert text.startswith("3 `weft serve --redis URL` replicas")
        assert "stored in and relayed through Redis" in text
        assert "SQLite store in a fresh" not in text
        assert text.endswith(target.setup.split("; ")[-1])  # the endpoint part is kept


def test_peers_are_described_the_same_whatever_the_replica_count():
    for target in peer_targets():
        assert target.describe(3) == target.setup

"""The `weft` command line: flags, environment variables, tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.auth import Authenticator
from server.cli import build_parser, config_from_args, main


def test_flags_build_the_config(tmp_path):
    args = build_parser().parse_args([
        "serve", "--host", "0.0.0.0", "--port", "9000", "--data-dir", str(tmp_path),
        "--auth-secret", "k", "--max-message-bytes", "100", "--max-doc-bytes", "200",
        "--max-ops-per-second", "5", "--log-level", "debug",
    ])
    config = config_from_args(args)
    assert (config.host, config.port, config.data_dir, config.auth_secret) == (
        "0.0.0.0", 9000, Path(tmp_path), "k")
    assert (config.limits.max_message_bytes, config.limits.max_doc_bytes,
            config.limits.max_ops_per_second) == (100, 200, 5)
    assert config.log_level == "debug"


def test_environment_variables_are_defaults_that_flags_override(monkeypatch):
    monkeypatch.setenv("WEFT_PORT", "9100")
    monkeypatch.setenv("WEFT_HOST", "::1")
    monkeypatch.setenv("WEFT_DATA_DIR", ":memory:")
    config = config_from_args(build_parser().parse_args(["serve"]))
    assert (config.host, config.port, config.data_dir) == ("::1", 9100, None)
    config = config_from_args(build_parser().parse_args(["serve", "--port", "9200"]))
    assert config.port == 9200


def test_an_invalid_environment_value_is_reported(monkeypatch):
    monkeypatch.setenv("WEFT_PORT", "eighty")
    with pytest.raises(SystemExit, match="WEFT_PORT"):
        build_parser()


def test_weft_token_mints_a_token_the_server_accepts(capsys):
    assert main(["token", "--doc", "notes/*", "--role", "read", "--auth-secret", "k"]) == 0
    token = capsys.readouterr().out.strip()
    grant = Authenticator("k").grant(token)
    assert (grant.pattern, grant.role) == ("notes/*", "read")


def test_weft_token_needs_the_secret(capsys, monkeypatch):
    monkeypatch.delenv("WEFT_AUTH_SECRET", raising=False)
    assert main(["token", "--doc", "x"]) == 2
    assert "auth-secret" in capsys.readouterr().err


def test_the_sqlite_sync_level_is_a_flag_and_reaches_the_store(tmp_path):
    from server.app import default_store
    from server.metrics import Metrics

    args = build_parser().parse_args(["serve", "--data-dir", str(tmp_path),
                                      "--sqlite-synchronous", "NORMAL"])
    config = config_from_args(args)
    assert config.sqlite_synchronous == "NORMAL"
    assert default_store(config, Metrics())._synchronous == "NORMAL"  # type: ignore[attr-defined]
    assert config_from_args(build_parser().parse_args(["serve"])).sqlite_synchronous == "FULL"

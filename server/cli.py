"""The ``weft`` command: ``weft serve`` runs the server, ``weft token`` mints auth tokens.

Every ``serve`` flag has an environment variable (``--port`` / ``WEFT_PORT``); a flag wins over
the variable, the variable over the default.  uvloop is used when installed.  SIGINT/SIGTERM
stop the server cleanly: connections are closed with 1001 and the store is flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from server.auth import ROLES, mint_token
from server.config import DEFAULT_PORT, Config
from server.limits import Limits

log = logging.getLogger("weft")

_DEFAULT_LIMITS = Limits()


def _env(name: str, default: Any, convert: Callable[[str], Any] = str) -> Any:
    value = os.environ.get(f"WEFT_{name}")
    if value is None or value == "":
        return default
    try:
        return convert(value)
    except ValueError:
        raise SystemExit(f"weft: environment variable WEFT_{name}={value!r} is invalid") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weft", description="Weft collaborative text server")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server",
                                description="Run the server (flags override WEFT_* variables).")
    serve.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="WEFT_HOST")
    serve.add_argument("--port", type=int, default=_env("PORT", DEFAULT_PORT, int),
                       help=f"WEFT_PORT (default {DEFAULT_PORT}; 0 picks a free port)")
    serve.add_argument("--data-dir", default=_env("DATA_DIR", "weft-data"),
                       help="WEFT_DATA_DIR: SQLite file location; ':memory:' keeps nothing")
    serve.add_argument("--sqlite-synchronous", choices=["FULL", "NORMAL"],
                       default=_env("SQLITE_SYNCHRONOUS", "FULL", str.upper),
                       help="WEFT_SQLITE_SYNCHRONOUS: FULL (default) acknowledges once the WAL is "
                            "fsynced (survives a power cut); NORMAL once written (survives a "
                            "process crash, not a machine crash; no fsync stalls)")
    serve.add_argument("--auth-secret", default=_env("AUTH_SECRET", None),
                       help="WEFT_AUTH_SECRET: require HMAC tokens signed with this secret")
    serve.add_argument("--max-message-bytes", type=int,
                       default=_env("MAX_MESSAGE_BYTES", _DEFAULT_LIMITS.max_message_bytes, int),
                       help="WEFT_MAX_MESSAGE_BYTES")
    serve.add_argument("--max-doc-bytes", type=int,
                       default=_env("MAX_DOC_BYTES", _DEFAULT_LIMITS.max_doc_bytes, int),
                       help="WEFT_MAX_DOC_BYTES")
    serve.add_argument("--max-ops-per-second", type=float,
                       default=_env("MAX_OPS_PER_SECOND", _DEFAULT_LIMITS.max_ops_per_second,
                                    float),
                       help="WEFT_MAX_OPS_PER_SECOND (0: unlimited)")
    serve.add_argument("--room-idle-seconds", type=float,
                       default=_env("ROOM_IDLE_SECONDS", 30.0, float),
                       help="WEFT_ROOM_IDLE_SECONDS: unload documents idle this long")
    serve.add_argument("--redis", default=_env("REDIS_URL", None),
                       help="WEFT_REDIS_URL: store documents in Redis and relay between "
                            "replicas through it (e.g. redis://127.0.0.1:6379/0; a Redis "
                            "Cluster: redis+cluster://host:port[,host:port...])")
    serve.add_argument("--replica-id", default=_env("REPLICA_ID", None),
                       help="WEFT_REPLICA_ID: this replica's name (default: random)")
    serve.add_argument("--ot-ordering", default=_env("OT_ORDERING", "sequencer"),
                       choices=["sequencer", "home"],
                       help="WEFT_OT_ORDERING: with --redis, order OT ops by a Redis "
                            "compare-and-set (sequencer, default) or by each document's home "
                            "replica, others forwarding to it (home)")
    serve.add_argument("--causal-wait-seconds", type=float,
                       default=_env("CAUSAL_WAIT_SECONDS", 5.0, float),
                       help="WEFT_CAUSAL_WAIT_SECONDS: how long a request with a causal token "
                            "(?after=) waits for this replica to catch up (default 5)")
    serve.add_argument("--hook-timeout", type=float, default=_env("HOOK_TIMEOUT", 5.0, float),
                       help="WEFT_HOOK_TIMEOUT: seconds before a hook call is cancelled")
    serve.add_argument("--webhook-url", default=_env("WEBHOOK_URL", None),
                       help="WEFT_WEBHOOK_URL: POST events as signed JSON to this http(s) URL")
    serve.add_argument("--webhook-secret", default=_env("WEBHOOK_SECRET", None),
                       help="WEFT_WEBHOOK_SECRET: HMAC key of X-Weft-Signature (required with "
                            "--webhook-url)")
    serve.add_argument("--webhook-events", default=_env("WEBHOOK_EVENTS", "change"),
                       help="WEFT_WEBHOOK_EVENTS: comma-separated, from change, store, load, "
                            "meta_conflict (default: change)")
    serve.add_argument("--meta-policy", default=_env("META_POLICY", "lww-hlc"),
                       choices=["lww-hlc", "lww-wall", "multi-value"],
                       help="WEFT_META_POLICY: conflict policy of document metadata fields "
                            "(default lww-hlc; lww-wall is unsafe under clock skew)")
    serve.add_argument("--clock-offset-ms", type=int, default=_env("CLOCK_OFFSET_MS", 0, int),
                       help="WEFT_CLOCK_OFFSET_MS: testing only: skew this replica's clock")
    serve.add_argument("--log-level", default=_env("LOG_LEVEL", "info"),
                       choices=["debug", "info", "warning", "error"], help="WEFT_LOG_LEVEL")

    token = commands.add_parser("token", help="mint an auth token",
                                description="Print a token for ?token= or a Bearer header.")
    token.add_argument("--doc", required=True,
                       help="document name, prefix pattern ('notes/*') or '*'")
    token.add_argument("--role", default="write", choices=ROLES)
    token.add_argument("--ttl", type=float, default=None, help="seconds until it expires")
    token.add_argument("--user", default=None,
                       help="the user the token speaks for (recorded as author of its edits)")
    token.add_argument("--auth-secret", default=_env("AUTH_SECRET", None),
                       help="WEFT_AUTH_SECRET (the server's secret)")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    limits = Limits(
        max_message_bytes=args.max_message_bytes,
        max_doc_bytes=args.max_doc_bytes,
        max_ops_per_second=args.max_ops_per_second,
        ops_burst=max(1, int(args.max_ops_per_second * 2)) if args.max_ops_per_second > 0
        else _DEFAULT_LIMITS.ops_burst,
    )
    data_dir = None if args.data_dir in (":memory:", "") else Path(args.data_dir)
    webhook_events = tuple(e.strip() for e in args.webhook_events.split(",") if e.strip())
    if args.webhook_url:
        from server.hooks.webhook import WEBHOOK_EVENTS

        if not args.webhook_secret:
            raise SystemExit("weft serve: --webhook-url needs --webhook-secret (bodies are "
                             "signed)")
        if not webhook_events or not set(webhook_events) <= set(WEBHOOK_EVENTS):
            raise SystemExit(f"weft serve: --webhook-events must be a comma-separated subset "
                             f"of {','.join(WEBHOOK_EVENTS)}, got {args.webhook_events!r}")
    return Config(host=args.host, port=args.port, data_dir=data_dir,
                  auth_secret=args.auth_secret or None, limits=limits,
                  room_idle_seconds=args.room_idle_seconds, log_level=args.log_level,
                  redis_url=args.redis or None, replica_id=args.replica_id or None,
                  ot_ordering=args.ot_ordering,
                  causal_wait_seconds=args.causal_wait_seconds,
                  hook_timeout_seconds=args.hook_timeout, webhook_url=args.webhook_url or None,
                  webhook_secret=args.webhook_secret or None, webhook_events=webhook_events,
                  meta_default_policy=args.meta_policy, clock_offset_ms=args.clock_offset_ms,
                  sqlite_synchronous=args.sqlite_synchronous)


async def serve(config: Config) -> None:
    """Run until SIGINT/SIGTERM, then shut down cleanly."""
    from server.app import WeftServer  # imported here so `weft token` starts fast

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with WeftServer(config) as server:
        # One parseable line for scripts and tests that start `weft serve --port 0`.
        print(f"weft: listening on {server.url}", flush=True)
        await stop.wait()
        log.info("signal received; shutting down")


def run(config: Config) -> None:
    try:
        import uvloop  # optional: faster event loop
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "token":
        if not args.auth_secret:
            print("weft token: --auth-secret (or WEFT_AUTH_SECRET) is required", file=sys.stderr)
            return 2
        print(mint_token(args.auth_secret, args.doc, args.role, args.ttl, args.user))
        return 0
    config = config_from_args(args)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level != "debug":
        # websockets logs every HTTP response and closed connection at INFO: noise at our rates.
        logging.getLogger("websockets").setLevel(logging.WARNING)
    if config.open_access and not config.on_loopback:
        log.warning("no --auth-secret: anyone who can reach %s may read and write every "
                    "document", config.host)
    run(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

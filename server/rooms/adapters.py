"""What a room needs to know about each engine kind, and nothing protocol-specific.

A room is engine-agnostic; this table tells it how to open an engine of a given kind, how big a
document is (for the size limit), and whether broadcasts must wait for durability:

* OT: an op is acknowledged and broadcast only once durable, in commit order (clients build on
  versions; a broadcast op that a restart then forgets would fork history).
* CRDT: updates commute and every client keeps what it has, so the update is fanned out as soon
  as the engine accepted it and stored in parallel; after a crash clients re-send what the
  server lost during their sync step 2.  Relaying to other replicas still waits for durability.

The engine classes are imported lazily so the server's other parts (store, auth, HTTP) import
and test without them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from engines.interface import Effects, Engine


@dataclass(frozen=True, slots=True)
class EngineAdapter:
    """How rooms handle one engine kind."""

    kind: str
    engine_path: str  # "module:Class"
    durable_before_broadcast: bool
    measure: Callable[[Engine], int]
    # Compact after this many times the configured record count; 0: never in the background.
    compact_factor: int = 1
    # Compact when the room unloads (fast reloads) — unless the snapshot would lose history
    # clients still need (OT: an offline client resubmits ops made at old versions, and the
    # engine's snapshot keeps no op history).
    compact_on_unload: bool = True
    # Write a load hook's initial text into a new, empty engine (None: cannot be seeded).
    seed: Callable[[Engine, str], Effects] | None = None

    def engine_class(self) -> Any:
        module, _, name = self.engine_path.partition(":")
        return getattr(importlib.import_module(module), name)

    def load(self, snapshot: bytes | None, log: Iterable[bytes]) -> Engine:
        engine: Engine = self.engine_class().load(snapshot, tuple(log))
        return engine


def _text_bytes(engine: Engine) -> int:
    return len(engine.text.encode("utf-8", "surrogatepass"))


def _state_bytes(engine: Engine) -> int:
    return len(engine.snapshot())


def _seed_ot(engine: Engine, text: str) -> Effects:
    """Create the document with ``text`` (ShareDB's create: the op at version 0)."""
    from engines.ot_engine import OTSubmit

    return engine.apply(OTSubmit([text], 0), "seed")


def _seed_crdt(engine: Engine, text: str) -> Effects:
    return engine.insert(0, text, "seed")


OT = EngineAdapter("ot", "engines.ot_engine:OTEngine", True, _text_bytes,
                   compact_factor=20, compact_on_unload=False, seed=_seed_ot)
CRDT = EngineAdapter("crdt", "engines.crdt_engine:CRDTEngine", False, _state_bytes,
                     seed=_seed_crdt)

ADAPTERS: dict[str, EngineAdapter] = {OT.kind: OT, CRDT.kind: CRDT}

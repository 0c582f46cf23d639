"""Multi-leader topologies with the real engines, in simulated time (issue 7).

N leaders each hold a real engine document (:class:`~engines.crdt_engine.CRDTEngine`, or for
OT a :class:`~ot.client.Client` per leader and one :class:`~engines.ot_engine.OTEngine` at the
sequencer) and exchange messages over ring, star or all-to-all links with per-link latency,
jitter, message loss and partitions.  A discrete-event loop (:mod:`.clock`) replaces sleeping,
so a run is deterministic for a seed and takes milliseconds of real time per simulated second;
only the engine calls' real CPU time is measured.

* :mod:`.clock` — the event heap and simulated clock;
* :mod:`.network` — topologies, link conditions, message accounting;
* :mod:`.replication` — flooding with dedup by ``(origin, seq)``, version vectors, anti-entropy;
* :mod:`.leaders` — the CRDT and OT leaders (OT: a sequencer ordering every op);
* :mod:`.ledger` — who has which edit when, and how often each was applied (the bookkeeping);
* :mod:`.workload` — seeded typing; :mod:`.scenario` — one run; :mod:`.suite` — the matrix
  of topologies x engines x link conditions; :mod:`.output` — Markdown table and figures;
  ``python -m benchmarks.topology`` — the command line (also ``python -m benchmarks --only
  topology``).
"""

"""The live suite: real servers on loopback, driven by a load generator that is not the bottleneck.

- :mod:`.targets` starts Weft (``weft serve``) or a peer as processes; the multi-replica hook.
- :mod:`.scenarios` runs one timed load, the throughput ramp, the idle-memory measurement.
- :mod:`.suite` runs a profile (quick / default) over every target.
- :mod:`.worker` is one generator process; :mod:`.editors` the simulated editors it holds;
  :mod:`.wsclient` their minimal WebSocket client; :mod:`.yjs_wire` the Yjs framings and the
  pre-generated updates; :mod:`.markers` what is typed and when.
- :mod:`.verify` checks convergence after the run; :mod:`.stats` and :mod:`.procmon` turn
  samples into numbers.
"""

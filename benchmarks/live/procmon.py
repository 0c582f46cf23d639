"""CPU and memory of the server processes under test, sampled from outside (psutil)."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from dataclasses import dataclass

import psutil


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
    return total


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def settled_rss(pids: list[int], samples: int = 5, interval: float = 0.1) -> int:
    """Median RSS over a few samples, so one allocation spike does not decide a baseline."""
    values = []
    for _ in range(samples):
        values.append(rss_bytes(pids))
        time.sleep(interval)
    return int(statistics.median(values))


@dataclass(slots=True)
class Usage:
    cpu_s: float
    wall_s: float
    rss_start: int
    rss_peak: int
    rss_end: int

    @property
    def cores(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


class Monitor:
    """Samples RSS every ``interval`` seconds between :meth:`start` and :meth:`stop`."""

    def __init__(self, pids: list[int], interval: float = 0.05) -> None:
        self.pids = pids
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="procmon", daemon=True)
        self._peak = 0
        self._cpu0 = 0.0
        self._t0 = 0.0
        self._rss0 = 0

    def start(self) -> None:
        self._cpu0 = cpu_seconds(self.pids)
        self._t0 = time.monotonic()
        self._rss0 = self._peak = rss_bytes(self.pids)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, rss_bytes(self.pids))

    def stop(self) -> Usage:
        self._stop.set()
        self._thread.join(timeout=5)
        rss_end = rss_bytes(self.pids)
        return Usage(
            cpu_s=cpu_seconds(self.pids) - self._cpu0,
            wall_s=time.monotonic() - self._t0,
            rss_start=self._rss0,
            rss_peak=max(self._peak, rss_end),
            rss_end=rss_end,
        )

"""Upload progress: a live bar on a terminal (tqdm), a plain line every few seconds elsewhere
(CI logs), both with instances/s, MB/s and the stored / already / failed counts."""

from __future__ import annotations

import sys
import time

PLAIN_EVERY_SECONDS = 5.0


class UploadProgress:
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._bar = None
        self._done = self._bytes = 0
        self._counts = {"stored": 0, "already": 0, "failed": 0}
        self._last_line = 0.0

    def start(self, instances: int, total_bytes: int, report) -> None:
        self._total, self._started = instances, time.monotonic()
        if report.done_before:
            print(f"  {report.done_before} file(s) already stored in earlier runs (journal {report.journal})",
                  file=self.stream)
        if self.tty:
            from tqdm import tqdm

            self._bar = tqdm(total=instances, unit="inst", file=self.stream, dynamic_ncols=True,
                             desc="uploading")
        else:
            print(f"  uploading {instances} instance(s), {total_bytes / 1e6:.1f} MB", file=self.stream,
                  flush=True)

    def advance(self, outcomes) -> None:
        for outcome in outcomes:
            self._counts[outcome.status] = self._counts.get(outcome.status, 0) + 1
            self._bytes += outcome.size
        self._done += len(outcomes)
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rates = f"{self._done / elapsed:.1f} inst/s, {self._bytes / elapsed / 1e6:.1f} MB/s"
        counts = ", ".join(f"{name} {count}" for name, count in self._counts.items())
        if self._bar is not None:
            self._bar.update(len(outcomes))
            self._bar.set_postfix_str(f"{rates}; {counts}")
        elif time.monotonic() - self._last_line >= PLAIN_EVERY_SECONDS or self._done == self._total:
            self._last_line = time.monotonic()
            print(f"  {self._done}/{self._total} instances ({rates}): {counts}", file=self.stream, flush=True)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()

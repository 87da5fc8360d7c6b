"""Upload progress: a live bar on a terminal (tqdm), a plain line every few seconds elsewhere
(CI logs), both with instances/s, MB/s and the stored / already / failed counts. Before that,
the count of files whose headers are read: on a large archive the scan takes minutes."""

from __future__ import annotations

import sys
import time

PLAIN_EVERY_SECONDS = 5.0


class UploadProgress:
    def __init__(self, stream=None, plain_every: float = PLAIN_EVERY_SECONDS):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.plain_every = plain_every
        self._bar = self._scan_bar = None
        self._done = self._bytes = 0
        self._counts = {"stored": 0, "already": 0, "failed": 0}
        self._last_line = time.monotonic()

    def scanned(self, files: int) -> None:
        """`files` looked at so far, DICOM or not."""
        if self.tty:
            if self._scan_bar is None:
                from tqdm import tqdm

                self._scan_bar = tqdm(unit=" files", file=self.stream, dynamic_ncols=True,
                                      desc="reading headers")
            self._scan_bar.update(files - self._scan_bar.n)
        elif time.monotonic() - self._last_line >= self.plain_every:
            self._last_line = time.monotonic()
            print(f"  reading headers: {files} file(s) so far", file=self.stream, flush=True)

    def start(self, instances: int, total_bytes: int, report) -> None:
        if self._scan_bar is not None:
            self._scan_bar.close()
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
        elif time.monotonic() - self._last_line >= self.plain_every or self._done == self._total:
            self._last_line = time.monotonic()
            print(f"  {self._done}/{self._total} instances ({rates}): {counts}", file=self.stream, flush=True)

    def finish(self) -> None:
        for bar in (self._scan_bar, self._bar):
            if bar is not None:
                bar.close()

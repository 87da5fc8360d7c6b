"""An archive cut into N shards by study: a worker given `--shard I/N` takes only the studies
whose StudyInstanceUID hashes to I. SHA-256 of the UID's text: the same on every machine and
Python version (the built-in hash is salted per process), and a study never spans shards."""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass

MAX_SHARDS = 10_000


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def takes(self, study_uid: str) -> bool:
        return shard_of(study_uid, self.count) == self.index


def shard_of(study_uid: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(study_uid.encode()).digest()[:8], "big") % count


def parse_shard(text: str) -> Shard:
    """`I/N` for argparse: 0 <= I < N <= 10,000."""
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a shard: give I/N, as 0/4 (the first of four)")
    shard = Shard(int(index), int(count))
    if not 1 <= shard.count <= MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"{text!r}: the shard count N must be 1 to {MAX_SHARDS}")
    if shard.index >= shard.count:
        raise argparse.ArgumentTypeError(f"{text!r}: shards are numbered 0 to {shard.count - 1}")
    return shard

"""Grouping more (key, value) records than fit in memory, through files on disk.

The preparation stage's duplicate search groups documents by hash (exact keys, MinHash bands) and removals by row.
Held in memory, those indexes grow with the corpus. Here records are spread over bucket files by the key's top
bits (keys are hashes or row numbers, spread evenly over ``[0, 2**key_bits)``), enough buckets that each holds
about ``max_in_memory`` distinct keys; a bucket is then read ``max_in_memory`` records at a time and reduced to one
summary per key, so memory stays bounded whatever the corpus size, even when one key repeats millions of times.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

RECORD = np.dtype([("key", "<u8"), ("value", "<i8")])


@dataclass
class Bucket:
    """The records of one range of keys, in a file."""

    path: str
    max_in_memory: int

    def chunks(self) -> Iterator[np.ndarray]:
        """The records, ``max_in_memory`` at a time, in the order they were added."""
        with open(self.path, "rb") as f:
            while len(records := np.fromfile(f, RECORD, count=self.max_in_memory)):
                yield records

    def summary(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each distinct key (sorted), its smallest value and its number of records."""
        keys, firsts, counts = np.empty(0, np.uint64), np.empty(0, np.int64), np.empty(0, np.int64)
        for chunk in self.chunks():  # folded into the summary so far: memory holds the distinct keys and one chunk
            k = np.concatenate([keys, chunk["key"]])
            v = np.concatenate([firsts, chunk["value"]])
            c = np.concatenate([counts, np.ones(len(chunk), np.int64)])
            order = np.lexsort((v, k))
            k, v, c = k[order], v[order], c[order]
            starts = np.flatnonzero(np.concatenate([[True], k[1:] != k[:-1]]))
            keys, firsts, counts = k[starts], v[starts], np.add.reduceat(c, starts)
        return keys, firsts, counts

    def pairs(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(smallest value of the key, value) for every record that is not its key's smallest value."""
        keys, firsts, _ = self.summary()
        for chunk in self.chunks():
            first = firsts[np.searchsorted(keys, chunk["key"])]
            later = chunk["value"] != first
            yield first[later], chunk["value"][later]


class DiskGroups:
    """Collect records with :meth:`add`, then read them back by :meth:`buckets`, in key order.

    ``expected`` is about how many distinct keys will come (it sets the number of buckets); ``max_in_memory``
    bounds the records gathered before they go to the bucket files, and those read back at a time."""

    def __init__(self, directory: str, *, key_bits: int, expected: int, max_in_memory: int = 1 << 20):
        self.directory = directory
        self.max_in_memory = max_in_memory
        os.makedirs(directory, exist_ok=True)
        bucket_bits = min(key_bits, max(0, math.ceil(math.log2(max(expected, 1) / max_in_memory))))
        self.shift = np.uint64(key_bits - bucket_bits)
        self.count = 0
        self._pending: list[np.ndarray] = []
        self._pending_count = 0

    def _path(self, bucket: int) -> str:
        return os.path.join(self.directory, f"{bucket:016x}.bin")  # fixed width: name order is key order

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        records = np.empty(len(keys), RECORD)
        records["key"], records["value"] = keys, values
        self._pending.append(records)
        self._pending_count += len(records)
        self.count += len(records)
        if self._pending_count >= self.max_in_memory:
            self._spill()

    def _spill(self) -> None:
        if not self._pending_count:
            return
        records = np.concatenate(self._pending)
        self._pending, self._pending_count = [], 0
        buckets = records["key"] >> self.shift
        order = np.argsort(buckets, kind="stable")
        records, buckets = records[order], buckets[order]
        for part in np.split(records, np.flatnonzero(np.diff(buckets)) + 1):
            with open(self._path(int(part["key"][0] >> self.shift)), "ab") as f:
                f.write(part.tobytes())

    def buckets(self) -> Iterator[Bucket]:
        """The non-empty buckets, in key order."""
        self._spill()
        for name in sorted(os.listdir(self.directory)):
            yield Bucket(os.path.join(self.directory, name), self.max_in_memory)

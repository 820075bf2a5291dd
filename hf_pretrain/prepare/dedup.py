"""Duplicate removal for the preparation stage: exact (a hash of the normalized text) and near-duplicates (MinHash
signatures of word 5-gram shingles, computed with datasketch; candidates share an LSH band).

A document is removed when it duplicates an earlier one: exactly, if their keys are equal; nearly, if they share a
band and their signatures estimate a Jaccard similarity of at least the threshold (so the threshold means what it
says, LSH only proposes candidates). The indexes are not held in memory: hashes and signatures are a ``datasets``
column on disk, and documents are grouped by hash through :class:`~hf_pretrain.disk_groups.DiskGroups`, so
memory does not grow with the corpus. The report's clusters are the documents removed as duplicates of each kept one.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import re
from dataclasses import dataclass, field

import numpy as np
from datasets import Dataset, Features, List, Value
from datasketch import MinHash, MinHashLSH
from tqdm.auto import tqdm

from .disk_groups import DiskGroups

_NON_WORD = re.compile(r"\W+")
EXACT, NEAR = 0, 1
# A removal is sorted as (removed row, kind << 62 | earlier row): for each removed row the exact match comes first,
# then the earliest near one.
KIND_SHIFT = 62
ROW_MASK = (1 << KIND_SHIFT) - 1
CHECK_BATCH = 8192  # candidate pairs whose signatures are compared at once


def exact_key(text: str) -> int:
    """Documents equal up to case, punctuation and whitespace share this 64-bit key."""
    digest = hashlib.blake2b(_NON_WORD.sub(" ", text.lower()).strip().encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def shingles(text: str, n: int = 5) -> set[bytes]:
    """The set of word ``n``-grams of a document (lower-cased, punctuation dropped); the whole text if shorter."""
    words = _NON_WORD.sub(" ", text.lower()).split()
    if len(words) <= n:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str, n: int = 5) -> float:
    """The exact Jaccard similarity of two documents' shingle sets (what MinHash estimates)."""
    x, y = shingles(a, n), shingles(b, n)
    return len(x & y) / len(x | y)


@dataclass
class Cluster:
    """A kept document, how many documents were removed as its duplicates, and the first of them."""

    kept: int
    size: int
    example: int


@dataclass
class Duplicates:
    """The rows to remove, sorted, with their kind (EXACT or NEAR) and the earlier row each one duplicates.

    The arrays are memory-mapped from files; ``largest`` holds the clusters with the most removed rows."""

    removed: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    kinds: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))
    matches: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    clusters: int = 0
    largest: list[Cluster] = field(default_factory=list)

    @property
    def exact(self) -> int:
        return int(np.count_nonzero(self.kinds == EXACT))

    @property
    def near(self) -> int:
        return int(np.count_nonzero(self.kinds == NEAR))


def lsh_bands(threshold: float, num_perm: int) -> list[tuple[int, int]]:
    """The (start, end) rows of each LSH band for ``threshold``: MinHashLSH's choice of b bands of r rows (it
    minimizes false positives and negatives); the bands themselves are grouped on disk, not in its index."""
    return MinHashLSH(threshold=threshold, num_perm=num_perm).hashranges


def hash_features(*, exact: bool, near: bool, threshold: float, num_perm: int) -> Features:
    """The columns :func:`hash_texts` fills: ``exact``, and ``minhash`` and ``bands`` for near-duplicates."""
    features = {"exact": Value("uint64")} if exact else {}
    if near:
        bands = len(lsh_bands(threshold, num_perm))
        features |= {"minhash": List(Value("uint32"), length=num_perm), "bands": List(Value("uint64"), length=bands)}
    return Features(features)


def hash_texts(
    texts: list[str], *, exact: bool, near: bool, threshold: float, num_perm: int, seed: int, ngram: int = 5
) -> dict[str, np.ndarray]:
    """The deduplication keys of a batch of documents: a pure function of each text, so documents may be hashed
    in any grouping (batches, processes, the tasks of ``prepare --tasks N``) and give the same keys."""
    out: dict[str, np.ndarray] = {}
    if exact:
        out["exact"] = np.array([exact_key(t) for t in texts], np.uint64)
    if near:
        bands = lsh_bands(threshold, num_perm)
        signatures = np.stack([m.hashvalues for m in MinHash.generator(
            (list(shingles(t, ngram)) for t in texts), num_perm=num_perm, seed=seed)]) if texts else \
            np.empty((0, num_perm), np.uint32)  # (batch, num_perm) uint32
        out["minhash"] = signatures
        out["bands"] = np.array([
            [int.from_bytes(hashlib.blake2b(bytes([band]) + signature[start:end].tobytes(), digest_size=8).digest(),
                            "little") for band, (start, end) in enumerate(bands)]
            for signature in signatures
        ], np.uint64).reshape(len(texts), len(bands))
    return out


def find_duplicates(
    documents: Dataset,
    directory: str,
    *,
    exact: bool = True,
    near: bool = True,
    threshold: float = 0.8,
    num_perm: int = 128,
    ngram: int = 5,
    seed: int = 1,
    num_proc: int | None = None,
    max_in_memory: int = 1 << 20,
    largest: int = 5,
    hashes: Dataset | None = None,
) -> Duplicates:
    """Exact duplicates and near-duplicates of an earlier document of ``documents`` (its ``text`` column), using
    ``directory`` for the work files and the result. ``hashes``, if given, holds :func:`hash_texts`'s columns for
    the same rows, computed beforehand (by the tasks of ``prepare --tasks N``); otherwise they are computed here.
    Memory is bounded by ``max_in_memory``: the records of 16 bytes held at a time, and about the distinct hashes
    of a bucket (16 MB by default, a few times that while grouping)."""
    n = len(documents)
    if not (exact or near) or n == 0:
        return Duplicates()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    if hashes is None:
        hashes = documents.map(
            hash_texts, input_columns="text", batched=True, batch_size=256, remove_columns=documents.column_names,
            features=hash_features(exact=exact, near=near, threshold=threshold, num_perm=num_perm),
            num_proc=num_proc, desc="Hashing for deduplication",
            fn_kwargs={"exact": exact, "near": near, "ngram": ngram, "num_perm": num_perm, "threshold": threshold,
                       "seed": seed},
        )
    by_text = DiskGroups(os.path.join(directory, "exact"), key_bits=64, expected=n, max_in_memory=max_in_memory)
    by_band = DiskGroups(os.path.join(directory, "bands"), key_bits=64, expected=n * lsh.b,
                         max_in_memory=max_in_memory)
    start = 0
    with tqdm(total=n, desc="Bucketing hashes", unit=" documents") as progress:
        keys = hashes.select_columns([name for name in hashes.column_names if name != "minhash"])
        for batch in keys.with_format("numpy").iter(10_000):
            rows = np.arange(start, start + len(next(iter(batch.values()))), dtype=np.int64)
            start += len(rows)
            progress.update(len(rows))
            if exact:
                by_text.add(batch["exact"], rows)
            if near:
                by_band.add(batch["bands"].ravel(), np.repeat(rows, lsh.b))

    row_bits = max(1, (n - 1).bit_length())
    removals = DiskGroups(os.path.join(directory, "removals"), key_bits=row_bits, expected=n,
                          max_in_memory=max_in_memory)
    for bucket in tqdm(list(by_text.buckets()), desc="Matching exact duplicates", unit=" buckets"):
        for earlier, later in bucket.pairs():
            removals.add(later.astype(np.uint64), (EXACT << KIND_SHIFT) | earlier)
    if near:
        signatures = hashes.select_columns("minhash").with_format("numpy")
        for bucket in tqdm(list(by_band.buckets()), desc="Checking near-duplicate candidates", unit=" buckets"):
            for earlier, later in bucket.pairs():
                for chunk in range(0, len(later), CHECK_BATCH):
                    a, b = earlier[chunk : chunk + CHECK_BATCH], later[chunk : chunk + CHECK_BATCH]
                    agreement = (signatures[a]["minhash"] == signatures[b]["minhash"]).mean(axis=1)
                    similar = agreement >= threshold
                    removals.add(b[similar].astype(np.uint64), (NEAR << KIND_SHIFT) | a[similar])
    return _collect(removals, directory, row_bits, max_in_memory, largest)


def _collect(removals: DiskGroups, directory: str, row_bits: int, max_in_memory: int, largest: int) -> Duplicates:
    """One decision per removed row (exact before near, then the earliest match), written to disk; then the
    clusters, each removed row counted under the kept document its chain of matches leads to."""
    paths = {name: os.path.join(directory, f"{name}.bin") for name in ("removed", "kinds", "matches")}
    with open(paths["removed"], "wb") as removed, open(paths["kinds"], "wb") as kinds, \
            open(paths["matches"], "wb") as matches:
        for bucket in removals.buckets():
            rows, decisions, _ = bucket.summary()
            removed.write(rows.astype(np.int64).tobytes())
            kinds.write((decisions >> KIND_SHIFT).astype(np.int8).tobytes())
            matches.write((decisions & ROW_MASK).tobytes())
    if removals.count == 0:
        return Duplicates()
    found = Duplicates(
        removed=np.memmap(paths["removed"], np.int64, mode="r"),
        kinds=np.memmap(paths["kinds"], np.int8, mode="r"),
        matches=np.memmap(paths["matches"], np.int64, mode="r"),
    )
    by_kept = DiskGroups(os.path.join(directory, "clusters"), key_bits=row_bits, expected=len(found.removed),
                         max_in_memory=max_in_memory)
    for start in range(0, len(found.removed), max_in_memory):
        kept = np.array(found.matches[start : start + max_in_memory])
        while True:  # follow matches that were removed themselves back to a kept row (each step goes earlier)
            position = np.searchsorted(found.removed, kept).clip(max=len(found.removed) - 1)
            was_removed = found.removed[position] == kept
            if not was_removed.any():
                break
            kept[was_removed] = found.matches[position[was_removed]]
        by_kept.add(kept.astype(np.uint64), found.removed[start : start + max_in_memory])
    top: list[tuple[int, int, Cluster]] = []
    for bucket in by_kept.buckets():
        keys, firsts, sizes = bucket.summary()
        found.clusters += len(keys)
        for at in np.argsort(-sizes, kind="stable")[:largest]:  # only a bucket's largest can be among the largest
            cluster = Cluster(int(keys[at]), int(sizes[at]), int(firsts[at]))
            heapq.heappush(top, (cluster.size, -cluster.kept, cluster))  # ties: the earlier kept document first
            if len(top) > largest:
                heapq.heappop(top)
    found.largest = [cluster for *_, cluster in sorted(top, key=lambda item: item[:2], reverse=True)]
    return found


def remove_duplicates(documents: Dataset, duplicates: Duplicates) -> Dataset:
    """``documents`` without the rows ``duplicates`` removes (looked up in their memory-mapped file)."""
    if len(duplicates.removed) == 0:
        return documents
    return documents.filter(
        _kept, with_indices=True, input_columns=[], batched=True,
        fn_kwargs={"removed_file": duplicates.removed.filename}, desc="Removing duplicates",
    )


def _kept(indices: list[int], removed_file: str) -> np.ndarray:
    removed = np.memmap(removed_file, np.int64, mode="r")
    position = np.searchsorted(removed, indices).clip(max=len(removed) - 1)
    return removed[position] != np.asarray(indices)

"""Duplicate removal for the preparation stage: exact (a hash of the normalized text) and near-duplicates
(MinHash signatures of word 5-gram shingles, candidates found by LSH, with datasketch).

The first document of a cluster is kept; the report lists the clusters found.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from datasketch import MinHash, MinHashLSH

_NON_WORD = re.compile(r"\W+")


def exact_key(text: str) -> bytes:
    """Documents equal up to case, punctuation and whitespace share this key."""
    return hashlib.blake2b(_NON_WORD.sub(" ", text.lower()).strip().encode(), digest_size=16).digest()


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
class Duplicates:
    """Which documents to drop, and the clusters they came from (kept document -> its duplicates)."""

    exact: set[int] = field(default_factory=set)
    near: set[int] = field(default_factory=set)
    clusters: dict[int, list[int]] = field(default_factory=dict)


def find_duplicates(
    texts: Iterable[str],
    *,
    exact: bool = True,
    near: bool = True,
    threshold: float = 0.8,
    num_perm: int = 128,
    ngram: int = 5,
    seed: int = 1,
) -> Duplicates:
    """Indices of exact duplicates and of near-duplicates (estimated Jaccard similarity of shingle sets at or
    above ``threshold``) of an earlier document, in one pass."""
    found = Duplicates()
    seen: dict[bytes, int] = {}
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm) if near else None
    signatures: dict[int, MinHash] = {}
    for index, text in enumerate(texts):
        if exact:
            key = exact_key(text)
            if key in seen:
                found.exact.add(index)
                found.clusters.setdefault(seen[key], []).append(index)
                continue
            seen[key] = index
        if lsh is None:
            continue
        signature = MinHash(num_perm=num_perm, seed=seed)
        signature.update_batch(list(shingles(text, ngram)))
        # LSH gives candidates; the signatures' own estimate decides, so the threshold means what it says.
        match = min(
            (c for c in lsh.query(signature) if signatures[c].jaccard(signature) >= threshold), default=None
        )
        if match is not None:
            found.near.add(index)
            found.clusters.setdefault(match, []).append(index)
            continue
        lsh.insert(index, signature)
        signatures[index] = signature
    return found


def largest_clusters(duplicates: Duplicates, k: int = 5) -> list[tuple[int, list[int]]]:
    """The ``k`` clusters with the most removed documents: (kept document, removed ones)."""
    return sorted(duplicates.clusters.items(), key=lambda item: -len(item[1]))[:k]

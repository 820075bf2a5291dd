"""Named random streams: every random choice in hf_pretrain draws from a generator seeded by
``derive_seed(stream, seed, *key)``, never from a module-level or global generator.

The stream tag keeps two uses of the same key apart: the masks of the batch of sequences (3, 7) and the ELECTRA
sampling noise of that same batch come from different streams, so they are independent draws. ``seed=0`` is a seed
like any other.
"""

from __future__ import annotations

import enum
import zlib

import numpy as np
import torch


class Stream(enum.IntEnum):
    """Every named stream. Values are part of the results (changing one changes what a seed draws): append only."""

    DYNAMIC_MASKS = 1  # collator masks, keyed by the batch's sequence ids
    STATIC_MASKS = 2  # masks drawn once at data preparation, keyed by (row, copy)
    VALIDATION_MASKS = 3  # the validation set's fixed masks, keyed by row
    COLLATOR = 4  # masks of features without sequence ids: a running stream per (process, DataLoader worker)
    GENERATOR_SAMPLING = 5  # ELECTRA's Gumbel noise, keyed by the batch's sequence ids
    GENERATOR_SAMPLING_RUNNING = 6  # ... a running stream per process where batches carry no sequence ids
    NSP_PAIRS = 7  # next-sentence pairs: target lengths, random next sentences, truncation sides
    VALIDATION_SPLIT = 8  # which documents a run holds out for validation
    PREPARED_SPLIT = 9  # `hf-pretrain prepare`'s train / validation / test partition
    MINHASH = 10  # the MinHash permutations of near-duplicate detection
    SOP_PAIRS = 11  # sentence-order pairs: target lengths, split points, which pairs are swapped
    PREFIX_LENGTHS = 12  # prefix LM: where each row's bidirectional prefix ends, keyed by the batch's sequence ids
    PREFIX_LENGTHS_RUNNING = 13  # ... a running stream per (process, DataLoader worker) without sequence ids
    STREAM_LOADER = 14  # the seed a streamed run's DataLoader draws for its workers, per process
    MATCH_PAIRS = 15  # token-matching pairs: which sentences pair, the edits of the copy, the order
    SEMANTIC_DEDUP = 16  # semantic deduplication: k-means's training sample and initial centroids


def stream_tag(stream: Stream | str) -> int:
    """The number that keys ``stream``: a :class:`Stream` member's value, or for a stream named by a string (an
    objective or plugin outside this package declares its own that way) a CRC-32 of the name above 2**32, so it
    never meets a member's value."""
    if isinstance(stream, str) and stream in Stream.__members__:
        return int(Stream[stream])
    if isinstance(stream, str):
        return 2**32 + zlib.crc32(stream.encode())
    return int(Stream(stream))


def derive_seed(stream: Stream | str, seed: int, *key: int) -> int:
    """A well-mixed 63-bit seed for ``stream`` (a :class:`Stream` or a name) from the run's ``seed`` and a key
    (rank, worker, sequence ids, ...), via numpy's SeedSequence, which spreads nearby inputs far apart."""
    # The key's length is part of the entropy: SeedSequence pads with zeros, so (3, 7) and (3, 7, 0) would collide.
    entropy = [stream_tag(stream), int(seed), len(key), *(int(k) for k in key)]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> 1)


def torch_generator(stream: Stream | str, seed: int, *key: int, device: torch.device | str | None = None) -> torch.Generator:
    """A ``torch.Generator`` (on ``device``, CPU by default) seeded for ``stream``, ``seed`` and ``key``."""
    return torch.Generator(device=device or "cpu").manual_seed(derive_seed(stream, seed, *key))


def numpy_generator(stream: Stream | str, seed: int, *key: int) -> np.random.Generator:
    """A numpy ``Generator`` seeded for ``stream``, ``seed`` and ``key``."""
    return np.random.default_rng(derive_seed(stream, seed, *key))


def legacy_seed(stream: Stream | str, seed: int, *key: int) -> int:
    """A 32-bit seed for libraries that take no more (``datasets``' shuffles, datasketch's permutations)."""
    return derive_seed(stream, seed, *key) % 2**32

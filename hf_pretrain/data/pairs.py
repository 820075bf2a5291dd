"""Sentence-pair construction: next-sentence prediction (following BERT's ``create_pretraining_data.py``),
sentence order, and cross-segment token matching."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset
from datasets.table import InMemoryTable

from ..constants import IGNORE_INDEX
from ..errors import HfPretrainError
from ..rng import Stream, numpy_generator
from .sequences import flatten_sentences

NSP_RANDOM_PROBABILITY = 0.5  # BERT: B is a random segment half of the time, the true continuation otherwise
IS_NEXT, NOT_NEXT = 0, 1  # BertForPreTraining's next_sentence_label convention


def truncated_lengths(len_a: int, len_b: int, max_tokens: int) -> tuple[int, int]:
    """How many tokens A and B lose when BERT repeatedly trims the longer one (B on ties) to fit ``max_tokens``."""
    excess = len_a + len_b - max_tokens
    if excess <= 0:
        return 0, 0
    gap = abs(len_a - len_b)
    if excess <= gap:
        return (excess, 0) if len_a > len_b else (0, excess)
    rest = excess - gap
    # Once equal, B is trimmed first, then they alternate.
    if len_a > len_b:
        return gap + rest // 2, (rest + 1) // 2
    return rest // 2, gap + (rest + 1) // 2


def _trim(tokens: np.ndarray, remove: int, rng: np.random.Generator) -> np.ndarray:
    """Remove ``remove`` tokens, each from the front or the back with equal probability (BERT adds this noise)."""
    if remove == 0:
        return tokens
    front = int(rng.binomial(remove, 0.5))
    return tokens[front : len(tokens) - (remove - front)]


def build_nsp_pairs(
    tokenized: Dataset,
    *,
    cls_id: int,
    sep_id: int,
    max_seq_length: int,
    short_seq_probability: float = 0.1,
    seed: int = 0,
    source: str = "the corpus",
) -> Dataset:
    """``[CLS] A [SEP] B [SEP]`` pairs from documents given as tokenized sentences (a ``sentences`` column).

    Sentences of a document are gathered until they reach the target length (``max_seq_length``, or with
    ``short_seq_probability`` a shorter random one); A is a random prefix of them, and B is the rest (label 0,
    IsNext) or, half of the time, a run of sentences from another document (label 1, NotNext), in which case the
    unused sentences go back to the document. The pair is trimmed to fit. All draws come from ``seed``.
    Unlike BERT's script, a single-sentence chunk never forces NotNext, so the labels stay balanced.
    """
    tokens, sentence_offsets, document_offsets = flatten_sentences(tokenized)
    n_sentences = np.diff(document_offsets)
    candidates = _documents_with_text(n_sentences, source)
    rng = numpy_generator(Stream.NSP_PAIRS, seed)
    max_tokens = max_seq_length - 3  # [CLS], [SEP], [SEP]

    def span(first: int, last: int) -> np.ndarray:  # sentences [first, last) of the corpus
        return tokens[sentence_offsets[first] : sentence_offsets[last]]

    input_ids, token_type_ids, labels = [], [], []
    for doc in candidates:
        first, count = int(document_offsets[doc]), int(n_sentences[doc])
        target = _chunk_target(rng, max_tokens, short_seq_probability)
        chunk_start, length, i = 0, 0, 0
        while i < count:
            length += sentence_offsets[first + i + 1] - sentence_offsets[first + i]
            chunk_len = i + 1 - chunk_start
            # A chunk needs two sentences for a true continuation; a lone long sentence takes the next one too.
            if i == count - 1 or (length >= target and chunk_len >= 2):
                is_random = rng.random() < NSP_RANDOM_PROBABILITY
                if chunk_len == 1 and not is_random:
                    # The document's last sentence has no continuation. BERT would force NotNext here, which
                    # skews the labels; drawing first and dropping the chunk keeps them at 50 %.
                    break
                a_end = chunk_start + (int(rng.integers(1, chunk_len)) if chunk_len >= 2 else 1)
                tokens_a = span(first + chunk_start, first + a_end)
                if is_random:
                    label = NOT_NEXT
                    tokens_b = span(*_random_segment(rng, doc, candidates, sentence_offsets, document_offsets,
                                                     max(1, target - len(tokens_a))))
                    i = a_end - 1  # the sentences not used for A go back into the document
                else:
                    label = IS_NEXT
                    tokens_b = span(first + a_end, first + i + 1)
                pair = _pair_row(tokens_a, tokens_b, cls_id, sep_id, max_tokens, rng)
                if pair is not None:
                    input_ids.append(pair[0])
                    token_type_ids.append(pair[1])
                    labels.append(label)
                chunk_start, length = i + 1, 0
            i += 1
    return Dataset.from_dict(
        {"input_ids": input_ids, "token_type_ids": token_type_ids, "next_sentence_label": labels}
    )


def _documents_with_text(n_sentences: np.ndarray, source: str) -> np.ndarray:
    """The documents NSP draws from (at least one sentence), refused in one line unless there are two."""
    candidates = np.flatnonzero(n_sentences > 0)
    if len(candidates) < 2:
        raise HfPretrainError(
            f"{source}: next-sentence prediction needs at least two documents with text, found {len(candidates)}; "
            "add documents or use --objective mlm"
        )
    return candidates


def _chunk_target(rng: np.random.Generator, max_tokens: int, short_seq_probability: float) -> int:
    """A document's chunk length: ``max_tokens``, or with ``short_seq_probability`` a shorter random one (BERT)."""
    if rng.random() < short_seq_probability:
        return int(rng.integers(2, max_tokens + 1))
    return max_tokens


def _random_segment(rng: np.random.Generator, doc: int, candidates: np.ndarray, sentence_offsets: np.ndarray,
                    document_offsets: np.ndarray, target: int) -> tuple[int, int]:
    """NotNext's B: the sentences ``[first, last)`` of another document than ``doc``, drawn at random, from a random
    sentence on until they reach ``target`` tokens (or the document ends)."""
    other = doc
    while other == doc:
        other = int(candidates[rng.integers(len(candidates))])
    first, count = int(document_offsets[other]), int(document_offsets[other + 1] - document_offsets[other])
    start = int(rng.integers(count))
    end = start
    while end < count and sentence_offsets[first + end] - sentence_offsets[first + start] < target:
        end += 1
    return first + start, first + end


def _pair_row(tokens_a: np.ndarray, tokens_b: np.ndarray, cls_id: int, sep_id: int, max_tokens: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """``[CLS] A [SEP] B [SEP]`` and its token types, A and B trimmed to fit ``max_tokens`` (None if one is empty)."""
    cut_a, cut_b = truncated_lengths(len(tokens_a), len(tokens_b), max_tokens)
    tokens_a, tokens_b = _trim(tokens_a, cut_a, rng), _trim(tokens_b, cut_b, rng)
    if not (len(tokens_a) and len(tokens_b)):
        return None
    input_ids = np.concatenate([[cls_id], tokens_a, [sep_id], tokens_b, [sep_id]]).astype(np.int32)
    return input_ids, np.repeat(np.array([0, 1], np.int8), [len(tokens_a) + 2, len(tokens_b) + 1])


IN_ORDER, SWAPPED = 0, 1  # ALBERT's sentence_order_label (and BERT's NSP head, trained on SOP labels)
SOP_SWAP_PROBABILITY = 0.5  # ALBERT (Lan et al., 2020, section 3.1): the two segments are swapped half of the time


def build_sop_pairs(
    tokenized: Dataset,
    *,
    cls_id: int,
    sep_id: int,
    max_seq_length: int,
    short_seq_probability: float = 0.1,
    seed: int = 0,
    source: str = "the corpus",
) -> Dataset:
    """``[CLS] A [SEP] B [SEP]`` pairs for sentence-order prediction: A and B are two consecutive segments of the
    same document, in document order (label 0) or, half of the time, swapped (label 1). Unlike NSP, a negative never
    mixes two documents, so the model must learn coherence rather than topic. Chunks are gathered and trimmed as
    :func:`build_nsp_pairs` does; a chunk of one sentence has no order to predict and is left out."""
    tokens, sentence_offsets, document_offsets = flatten_sentences(tokenized)
    n_sentences = np.diff(document_offsets)
    if not (n_sentences >= 2).any():
        raise HfPretrainError(
            f"{source}: sentence-order prediction needs documents of at least two sentences; add text or use "
            "--objective mlm"
        )
    rng = numpy_generator(Stream.SOP_PAIRS, seed)
    max_tokens = max_seq_length - 3  # [CLS], [SEP], [SEP]
    input_ids, token_type_ids, labels = [], [], []
    for doc in np.flatnonzero(n_sentences >= 2):
        first, count = int(document_offsets[doc]), int(n_sentences[doc])
        target = _chunk_target(rng, max_tokens, short_seq_probability)
        chunk_start, length = 0, 0
        for i in range(count):
            length += sentence_offsets[first + i + 1] - sentence_offsets[first + i]
            chunk_len = i + 1 - chunk_start
            if chunk_len >= 2 and (length >= target or i == count - 1):
                a_end = first + chunk_start + int(rng.integers(1, chunk_len))
                tokens_a = tokens[sentence_offsets[first + chunk_start] : sentence_offsets[a_end]]
                tokens_b = tokens[sentence_offsets[a_end] : sentence_offsets[first + i + 1]]
                label = SWAPPED if rng.random() < SOP_SWAP_PROBABILITY else IN_ORDER
                if label == SWAPPED:
                    tokens_a, tokens_b = tokens_b, tokens_a
                pair = _pair_row(tokens_a, tokens_b, cls_id, sep_id, max_tokens, rng)
                if pair is not None:
                    input_ids.append(pair[0])
                    token_type_ids.append(pair[1])
                    labels.append(label)
                chunk_start, length = i + 1, 0
    return Dataset.from_dict(
        {"input_ids": input_ids, "token_type_ids": token_type_ids, "next_sentence_label": labels}
    )


MATCH_NEIGHBOUR_PROBABILITY = 0.2  # B is the next sentence (few shared tokens) instead of an edited copy of A
MATCH_MAX_EDIT_RATE = 0.6  # a copy's edit rate is uniform in [0, this): from near-identical to mostly rewritten
MATCH_ROTATE_PROBABILITY = 0.3  # a copy is also rotated at a word boundary (clauses in another order)
MATCH_MIN_TOKENS = 8  # a shorter sentence is joined with the one after it


def _words(tokens: np.ndarray, word_starts: np.ndarray) -> list[np.ndarray]:
    starts = np.flatnonzero(word_starts[tokens])
    starts = starts[starts > 0]
    return np.split(tokens, starts)


def _edited_copy(a: np.ndarray, other: np.ndarray, word_starts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``a`` with each word, at a rate drawn per pair, dropped, replaced by a word of ``other``, or followed by one
    (a third each), then rotated at a word boundary some of the time: a paraphrase-like copy whose overlap with
    ``a`` runs from nearly all to little."""
    rate = rng.uniform(0, MATCH_MAX_EDIT_RATE)
    donors = _words(other, word_starts)
    draws = rng.random(len(a))  # one per token bounds the words; only the first len(words) are used
    words: list[np.ndarray] = []
    for word, u in zip(_words(a, word_starts), draws):
        if u < rate / 3:
            continue
        if u < 2 * rate / 3:
            words.append(donors[rng.integers(len(donors))])
            continue
        words.append(word)
        if u < rate:
            words.append(donors[rng.integers(len(donors))])
    if len(words) > 3 and rng.random() < MATCH_ROTATE_PROBABILITY:
        cut = int(rng.integers(1, len(words)))
        words = words[cut:] + words[:cut]
    return np.concatenate(words) if words else other


def build_match_pairs(
    tokenized: Dataset,
    *,
    cls_id: int,
    sep_id: int,
    word_starts: np.ndarray,
    max_seq_length: int,
    seed: int = 0,
    source: str = "the corpus",
) -> Dataset:
    """``[CLS] A [SEP] B [SEP]`` pairs for cross-segment token matching, one per sentence A of every document with
    two or more: B is an edited copy of A (:func:`_edited_copy`, with words of the next sentence) or, with
    ``MATCH_NEIGHBOUR_PROBABILITY``, the next sentence itself; A and B swap places half of the time. Each segment is
    cut to half the row. ``match_labels`` says, for each token, whether its id occurs in the other segment (1) or
    not (0); -100 on the special tokens. ``word_starts[id]`` is True where token ``id`` begins a word.

    A sentence pair task that MRPC-like fine-tuning transfers from: telling which tokens of one segment the other
    holds can only be learned by attending across the two, and pooled over tokens it is the overlap of the pair.
    """
    tokens, sentence_offsets, document_offsets = flatten_sentences(tokenized)
    n_sentences = np.diff(document_offsets)
    if not (n_sentences >= 2).any():
        raise HfPretrainError(
            f"{source}: token-matching pairs need documents of at least two sentences; add text or use --objective mlm"
        )
    rng = numpy_generator(Stream.MATCH_PAIRS, seed)
    half = (max_seq_length - 3) // 2
    input_ids, match_labels = [], []
    for doc in np.flatnonzero(n_sentences >= 2):
        first, count = int(document_offsets[doc]), int(n_sentences[doc])
        i = 0
        while i < count:
            end = i + 1
            while end < count and sentence_offsets[first + end] - sentence_offsets[first + i] < MATCH_MIN_TOKENS:
                end += 1
            a = tokens[sentence_offsets[first + i] : sentence_offsets[first + end]][:half]
            neighbour = end if end < count else i - 1
            if neighbour < 0:
                break
            other = tokens[sentence_offsets[first + neighbour] : sentence_offsets[first + neighbour + 1]][:half]
            if rng.random() < MATCH_NEIGHBOUR_PROBABILITY:
                b = other
            else:
                b = _edited_copy(a, other, word_starts, rng)[:half]
            if rng.random() < 0.5:
                a, b = b, a
            if len(a) and len(b):
                input_ids.append(np.concatenate([[cls_id], a, [sep_id], b, [sep_id]]).astype(np.int32))
                match_labels.append(np.concatenate(
                    [[IGNORE_INDEX], np.isin(a, b), [IGNORE_INDEX], np.isin(b, a), [IGNORE_INDEX]]
                ).astype(np.int8))
            i = end
    return Dataset.from_dict({"input_ids": input_ids, "match_labels": match_labels})


def fill_rows(lengths: np.ndarray, capacity: int) -> list[list[int]]:
    """Items of ``lengths`` (1 to ``capacity`` each) grouped into rows of at most ``capacity``: each row opens with
    the longest item left and then takes, while any fits, the longest one that fits (the first of that length). Once
    a row is closed no item left fits in it, so every item of a later row is longer than an earlier row's free space.

    Why not in order: pairs of two sentences are of any length up to a row's, and taking them as they come leaves a
    quarter of each row empty (75 % filled on the Wikipedia sample), computed for nothing; largest fit fills 99 %."""
    queues: list[list[int]] = [[] for _ in range(capacity + 1)]  # item indices by length, each in order
    for i, length in enumerate(lengths.tolist()):
        queues[length].append(i)
    heads = [0] * (capacity + 1)  # how many of each queue are placed
    rows, longest = [], capacity
    while True:
        while longest > 0 and heads[longest] == len(queues[longest]):
            longest -= 1
        if longest == 0:
            return rows
        row, free, size = [], capacity, longest
        while size > 0:  # the longest item that fits the free space, down to none
            if heads[size] < len(queues[size]):
                row.append(queues[size][heads[size]])
                heads[size] += 1
                free -= size
                size = min(size, free)
            else:
                size -= 1
        rows.append(row)


def pack_pairs(pairs: Dataset, max_seq_length: int) -> Dataset:
    """Several whole pairs per row (``[CLS] A [SEP] B [SEP]``, as :func:`build_match_pairs` makes them), as many as
    :func:`fill_rows` fits in ``max_seq_length`` tokens; a pair is never cut. Each pair starts with its ``[CLS]``, so
    the collator's ``document_ids`` and restarting ``position_ids`` (``--isolate_documents``) keep the pairs of a
    row apart as packed documents. Every column is joined alike.

    Why: a pair of two short sentences fills a third of a 128-token row; padded alone, the rest of the row is
    computed for nothing."""
    table = pairs.with_format("arrow")[:]
    lengths = pc.list_value_length(table.column("input_ids")).to_numpy(zero_copy_only=False)
    if len(lengths) and lengths.max() > max_seq_length:
        raise ValueError(f"a pair of {int(lengths.max())} tokens does not fit a row of {max_seq_length}")
    rows = fill_rows(lengths, max_seq_length)
    order = np.array([i for row in rows for i in row], np.int64)
    ends = np.cumsum([len(row) for row in rows], dtype=np.int64) - 1  # each row's last pair, in the new order
    row_offsets = pa.array(np.concatenate([[0], np.cumsum(lengths[order])[ends]]), pa.int32())
    table = table.take(pa.array(order))
    columns = {name: pa.ListArray.from_arrays(row_offsets, pc.list_flatten(table.column(name)).combine_chunks())
               for name in table.column_names}
    return Dataset(InMemoryTable(pa.table(columns)))

"""Documents as sequences of token ids: sentence-split and tokenized, flattened, and packed for MLM."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerBase

from .sentences import split_sentences


def encode_sentences(per_document: list[list[str]], tokenizer: PreTrainedTokenizerBase) -> pa.ListArray:
    """Each document's sentences as token ids, ``list<list<int32>>`` built straight from numpy; empty sentences
    are dropped.

    With a fast tokenizer, each document is encoded once, its sentences joined by ``[SEP]``, and cut at those
    ids: the same ids as encoding sentence by sentence (special tokens are split out before normalization), at a
    fraction of the cost (one Rust call and one id list per document, not per sentence). A document whose text
    holds the ``[SEP]`` string itself is encoded sentence by sentence.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and (backend.truncation is not None or backend.padding is not None):
        # A call such as tokenizer(text, truncation=True, max_length=128) leaves the backend truncating: a copy
        # without it, or every document would be cut to that length without a word.
        backend = Tokenizer.from_str(backend.to_str())
        backend.no_truncation()
        backend.no_padding()
    separator = tokenizer.sep_token
    values: list[np.ndarray] = []
    sentence_lengths: list[np.ndarray] = []
    sentence_counts: list[int] = []

    def add(pieces: list[list[int]]) -> None:
        pieces = [piece for piece in pieces if len(piece)]
        values.append(np.fromiter((t for piece in pieces for t in piece), dtype=np.int32))
        sentence_lengths.append(np.array([len(piece) for piece in pieces], dtype=np.int64))
        sentence_counts.append(len(pieces))

    if backend is None or separator is None:
        flat = [sentence for sentences in per_document for sentence in sentences]
        # verbose=False: documents longer than the model are expected here; they are cut into sequences later.
        ids = tokenizer(flat, add_special_tokens=False, verbose=False)["input_ids"] if flat else []
        start = 0
        for sentences in per_document:
            add(ids[start : start + len(sentences)])
            start += len(sentences)
    else:
        joinable = [not any(separator in sentence for sentence in sentences) for sentences in per_document]
        encodings = backend.encode_batch_fast(
            [f" {separator} ".join(sentences) if ok else "" for sentences, ok in zip(per_document, joinable)],
            add_special_tokens=False,
        )
        sep_id = tokenizer.sep_token_id
        for sentences, ok, encoding in zip(per_document, joinable, encodings):
            if not ok:
                add([e.ids for e in backend.encode_batch_fast(sentences, add_special_tokens=False)])
                continue
            ids = np.asarray(encoding.ids, dtype=np.int32)
            cuts = np.flatnonzero(ids == sep_id)
            lengths = np.diff(np.concatenate([[0], cuts, [len(ids)]]))
            lengths[1:] -= 1  # every sentence after the first starts with the [SEP] that joined it
            values.append(ids[ids != sep_id])
            sentence_lengths.append(lengths[lengths > 0])
            sentence_counts.append(int((lengths > 0).sum()))
    tokens = np.concatenate(values) if values else np.zeros(0, np.int32)
    sentence_offsets = np.concatenate([[0], np.cumsum(np.concatenate(sentence_lengths or [np.zeros(0, np.int64)]))])
    document_offsets = np.concatenate([[0], np.cumsum(sentence_counts, dtype=np.int64)])
    sentences = pa.ListArray.from_arrays(pa.array(sentence_offsets, pa.int32()), pa.array(tokens))
    return pa.ListArray.from_arrays(pa.array(document_offsets, pa.int32()), sentences)


def tokenize_documents(
    documents: Dataset, tokenizer: PreTrainedTokenizerBase, num_proc: int | None = None, batch_size: int = 1000
) -> Dataset:
    """Replace each document's ``text`` by ``sentences``: its sentences as lists of token ids (no special tokens).

    Documents that already carry their ``sentences`` as text (a prepared dataset) are not split again. Memory
    grows with ``batch_size`` (documents per batch): the tokenizer's encodings of a batch are held at once."""
    presplit = "sentences" in documents.column_names

    def tokenize(batch: pa.Table) -> pa.Table:
        if presplit:
            per_document = batch["sentences"].to_pylist()
        else:
            per_document = [split_sentences(text) for text in batch["text"].to_pylist()]
        return pa.table({"sentences": encode_sentences(per_document, tokenizer)})

    return documents.with_format("arrow").map(
        tokenize, batched=True, batch_size=batch_size, writer_batch_size=batch_size, num_proc=num_proc,
        remove_columns=documents.column_names,
        desc="Tokenizing" if presplit else "Splitting and tokenizing",
    ).with_format(None)


def flatten_sentences(tokenized: Dataset | pa.ListArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The corpus (tokenized documents, or their ``sentences`` column) as flat arrays: ``tokens``,
    ``sentence_offsets`` (sentence i is ``tokens[o[i]:o[i+1]]``) and ``document_offsets`` (document d holds sentences
    ``o[d]:o[d+1]``); no Python loop over tokens."""
    if isinstance(tokenized, Dataset):
        column = tokenized.with_format("arrow")[:]["sentences"].combine_chunks()
    else:
        column = tokenized
    sentences = pc.list_flatten(column)
    tokens = pc.list_flatten(sentences).to_numpy(zero_copy_only=False).astype(np.int32)

    def offsets(list_array) -> np.ndarray:
        lengths = pc.list_value_length(list_array).to_numpy(zero_copy_only=False)
        return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    return tokens, offsets(sentences), offsets(column)


def _packed_blocks(
    tokenized: Dataset, cls_id: int, sep_id: int, max_seq_length: int, isolate_documents: bool, chunk: int
) -> Iterator[np.ndarray]:
    """``(rows, max_seq_length)`` blocks of packed sequences, ``chunk`` documents at a time: what a chunk leaves
    over carries into the next, so memory is bounded by the chunk, whatever the corpus size."""
    chunks = (tokenized.select(range(start, min(start + chunk, len(tokenized))))
              for start in range(0, len(tokenized), chunk))
    return pack_blocks(chunks, cls_id, sep_id, max_seq_length, isolate_documents)


def pack_blocks(
    chunks: Iterable[Dataset | pa.ListArray], cls_id: int, sep_id: int, max_seq_length: int, isolate_documents: bool
) -> Iterator[np.ndarray]:
    """Packed rows from consecutive chunks of tokenized documents (see :func:`pack_sequences`), a block of rows per
    chunk; the tokens a chunk leaves over start the next one's first row, and the last chunk's are dropped."""
    carry = np.zeros(0, dtype=np.int32)
    width = max_seq_length if isolate_documents else max_seq_length - 2
    for chunk in chunks:
        tokens, sentence_offsets, document_offsets = flatten_sentences(chunk)
        document_ends = sentence_offsets[document_offsets[1:]]
        if isolate_documents:
            document_starts = sentence_offsets[document_offsets[:-1]]
            # One insert, in document order (np.insert keeps the given order at equal positions): a document's
            # [SEP] goes in before the next one's [CLS].
            positions = np.stack([document_starts, document_ends], axis=1).ravel()
            specials = np.tile(np.array([cls_id, sep_id], dtype=np.int32), len(document_starts))
            stream = np.concatenate([carry, np.insert(tokens, positions, specials)])
        else:  # [SEP] after every document keeps the boundary visible to the model
            stream = np.concatenate([carry, np.insert(tokens, document_ends, sep_id)])
        n = len(stream) // width
        carry = stream[n * width :]
        rows = stream[: n * width].reshape(n, width)
        if not isolate_documents:
            rows = np.concatenate([np.full((n, 1), cls_id, np.int32), rows, np.full((n, 1), sep_id, np.int32)], axis=1)
        yield rows


def pack_sequences(
    tokenized: Dataset,
    cls_id: int,
    sep_id: int,
    max_seq_length: int,
    isolate_documents: bool = False,
    chunk: int = 10_000,
    streaming: bool = False,
) -> Dataset:
    """MLM sequences of exactly ``max_seq_length`` tokens, cut from the concatenated documents: no padding is wasted.

    By default (RoBERTa's FULL-SENTENCES packing) documents are joined with ``[SEP]`` and each row is
    ``[CLS] chunk [SEP]``; the model attends across the documents of a row. With ``isolate_documents`` every
    document is laid out as ``[CLS] document [SEP]`` and rows are cut straight from that stream, so each
    document's start is marked by its ``[CLS]``: the collator derives ``document_ids`` and restarting
    ``position_ids`` from them, and the model attends within each document only. A document cut at a row's end continues at the start of the
    next row, where it is a document of its own.

    Packing runs ``chunk`` documents at a time. ``streaming`` writes the rows to disk as they come (memory bounded
    by the chunk); otherwise they are gathered in memory, which is faster.
    """

    def rows() -> Iterator[dict[str, np.ndarray]]:
        for block in _packed_blocks(tokenized, cls_id, sep_id, max_seq_length, isolate_documents, chunk):
            for row in block:
                yield {"input_ids": row}

    if streaming:
        return Dataset.from_generator(rows)
    blocks = list(_packed_blocks(tokenized, cls_id, sep_id, max_seq_length, isolate_documents, chunk))
    input_ids = np.concatenate(blocks) if blocks else np.zeros((0, max_seq_length), np.int32)
    return Dataset.from_dict({"input_ids": input_ids})

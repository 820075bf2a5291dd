"""Documents as sequences of token ids: sentence-split and tokenized, flattened, and packed for MLM."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from .sentences import split_sentences


def tokenize_documents(documents: Dataset, tokenizer: PreTrainedTokenizerBase, num_proc: int | None = None) -> Dataset:
    """Replace each document's ``text`` by ``sentences``: its sentences as lists of token ids (no special tokens)."""

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        per_document = [split_sentences(text) for text in batch["text"]]
        flat = [sentence for sentences in per_document for sentence in sentences]
        # verbose=False: documents longer than the model are expected here; they are cut into sequences later.
        ids = tokenizer(flat, add_special_tokens=False, verbose=False)["input_ids"] if flat else []
        out, start = [], 0
        for sentences in per_document:
            out.append([s for s in ids[start : start + len(sentences)] if s])
            start += len(sentences)
        return {"sentences": out}

    return documents.map(
        tokenize, batched=True, num_proc=num_proc, remove_columns=documents.column_names, desc="Splitting and tokenizing"
    )


def flatten_sentences(tokenized: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The corpus as flat arrays: ``tokens``, ``sentence_offsets`` (sentence i is ``tokens[o[i]:o[i+1]]``) and
    ``document_offsets`` (document d holds sentences ``o[d]:o[d+1]``); no Python loop over tokens."""
    column = tokenized.with_format("arrow")[:]["sentences"].combine_chunks()
    sentences = pc.list_flatten(column)
    tokens = pc.list_flatten(sentences).to_numpy(zero_copy_only=False).astype(np.int32)

    def offsets(list_array) -> np.ndarray:
        lengths = pc.list_value_length(list_array).to_numpy(zero_copy_only=False)
        return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    return tokens, offsets(sentences), offsets(column)


def pack_sequences(
    tokenized: Dataset, cls_id: int, sep_id: int, max_seq_length: int, isolate_documents: bool = False
) -> Dataset:
    """MLM sequences of exactly ``max_seq_length`` tokens, cut from the concatenated documents: no padding is wasted.

    By default (RoBERTa's FULL-SENTENCES packing) documents are joined with ``[SEP]`` and each row is
    ``[CLS] chunk [SEP]``; the model attends across the documents of a row. With ``isolate_documents`` every
    document is laid out as ``[CLS] document [SEP]`` and rows are cut straight from that stream, so each
    document's start is marked by its ``[CLS]``: the collator derives ``document_ids`` and restarting
    ``position_ids`` from it, and the model attends within each document only. A document cut at a row's end
    continues at the start of the next row, where it is a document of its own.
    """
    tokens, sentence_offsets, document_offsets = flatten_sentences(tokenized)
    document_ends = sentence_offsets[document_offsets[1:]]
    if isolate_documents:
        document_starts = sentence_offsets[document_offsets[:-1]]
        # One insert, in document order (np.insert keeps the given order at equal positions): a document's [SEP]
        # goes in before the next one's [CLS].
        positions = np.stack([document_starts, document_ends], axis=1).ravel()
        specials = np.tile(np.array([cls_id, sep_id], dtype=tokens.dtype), len(document_starts))
        stream = np.insert(tokens, positions, specials)
        n = len(stream) // max_seq_length
        return Dataset.from_dict({"input_ids": stream[: n * max_seq_length].reshape(n, max_seq_length)})
    # [SEP] after every document keeps the boundary visible to the model.
    stream = np.insert(tokens, document_ends, sep_id)
    body = max_seq_length - 2
    n = len(stream) // body
    chunks = stream[: n * body].reshape(n, body)
    sequences = np.concatenate(
        [np.full((n, 1), cls_id, np.int32), chunks, np.full((n, 1), sep_id, np.int32)], axis=1
    )
    return Dataset.from_dict({"input_ids": sequences})

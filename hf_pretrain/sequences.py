"""Turn documents into training sequences: sentence-split and tokenized, then packed for MLM or paired for NSP."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict
from transformers import PreTrainedTokenizerBase

from .errors import HfPretrainError
from .masking import mask_dataset
from .sentence_pairs import build_nsp_pairs
from .sentences import split_sentences


def tokenize_documents(documents: Dataset, tokenizer: PreTrainedTokenizerBase, num_proc: int | None = None) -> Dataset:
    """Replace each document's ``text`` by ``sentences``: its sentences as lists of token ids (no special tokens)."""

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        per_document = [split_sentences(text) for text in batch["text"]]
        flat = [sentence for sentences in per_document for sentence in sentences]
        ids = tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
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


def pack_sequences(tokenized: Dataset, cls_id: int, sep_id: int, max_seq_length: int) -> Dataset:
    """MLM sequences of exactly ``max_seq_length`` tokens: documents are concatenated with ``[SEP]`` between them
    and cut into ``[CLS] chunk [SEP]`` pieces (RoBERTa's FULL-SENTENCES packing: no padding is wasted)."""
    tokens, sentence_offsets, document_offsets = flatten_sentences(tokenized)
    # [SEP] after every document keeps the boundary visible to the model.
    boundaries = sentence_offsets[document_offsets[1:]]
    stream = np.insert(tokens, boundaries, sep_id)
    body = max_seq_length - 2
    n = len(stream) // body
    chunks = stream[: n * body].reshape(n, body)
    sequences = np.concatenate(
        [np.full((n, 1), cls_id, np.int32), chunks, np.full((n, 1), sep_id, np.int32)], axis=1
    )
    return Dataset.from_dict({"input_ids": sequences})


def build_pretraining_dataset(
    documents: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_seq_length: int,
    with_nsp: bool,
    static_masking: bool = False,
    mlm_probability: float = 0.15,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    duplication_factor: int = 1,
    short_seq_probability: float = 0.1,
    seed: int = 0,
    num_proc: int | None = None,
    source: str = "the corpus",
) -> DatasetDict:
    """Training (and validation) sequences for BERT pretraining.

    With ``with_nsp`` each row is a ``[CLS] A [SEP] B [SEP]`` pair with ``token_type_ids`` and
    ``next_sentence_label``; otherwise a packed sequence. Static masking stores ``duplication_factor`` masked
    copies of each training row. Validation rows are always masked once, from a fixed seed, so that every
    evaluation of a run (and of runs with the same data) scores the same masks.
    """
    masking = dict(
        mlm_probability=mlm_probability, mask_replace_prob=mask_replace_prob, random_replace_prob=random_replace_prob
    )
    out = DatasetDict()
    for split, docs in documents.items():
        tokenized = tokenize_documents(docs, tokenizer, num_proc)
        if with_nsp:
            sequences = build_nsp_pairs(
                tokenized,
                cls_id=tokenizer.cls_token_id,
                sep_id=tokenizer.sep_token_id,
                max_seq_length=max_seq_length,
                short_seq_probability=short_seq_probability,
                seed=seed,
                source=f"{source} ({split})",
            )
        else:
            sequences = pack_sequences(tokenized, tokenizer.cls_token_id, tokenizer.sep_token_id, max_seq_length)
        if len(sequences) == 0:
            raise HfPretrainError(
                f"{source} ({split} split): too little text for one sequence of --max_seq_length {max_seq_length}; "
                "add text or lower --max_seq_length"
            )
        if split != "train":
            sequences = mask_dataset(sequences, tokenizer, seed=seed, num_proc=num_proc, **masking)
        elif static_masking:
            sequences = mask_dataset(
                sequences, tokenizer, duplication_factor=duplication_factor, seed=seed, num_proc=num_proc, **masking
            )
        out[split] = sequences
    return out

"""The recipes' data step: read the corpus (or a prepared dataset), get the tokenizer, and let the objective build
its training and validation rows; a streamed corpus goes to :mod:`.streaming`."""

from __future__ import annotations

import logging

import numpy as np
from datasets import DatasetDict
from transformers import PreTrainedTokenizerBase, TrainingArguments

from ..data.arguments import DataArguments
from ..data.corpus import load_corpus
from ..data.sequences import tokenize_documents
from ..errors import BadInput, HfPretrainError
from ..models.arguments import ModelArguments
from ..objectives import Objective, objective_class
from ..objectives.arguments import PretrainingArguments
from .inputs import PretrainingData, describe_corpus, open_prepared, prepare_tokenizer
from .streaming import prepare_streaming_data

logger = logging.getLogger(__name__)


def build_sequences(
    objective: Objective, tokenized: DatasetDict, tokenizer: PreTrainedTokenizerBase, *, max_seq_length: int,
    short_seq_probability: float = 0.1, num_proc: int | None = None, source: str = "the corpus",
) -> DatasetDict:
    """The objective's rows for every split of tokenized documents (:func:`tokenize_documents`); training rows
    carry their index as ``sequence_id`` (what masks, exact resume and the sequence log identify a sequence by)."""
    out = DatasetDict()
    for split, documents in tokenized.items():
        rows = objective.build_rows(
            documents, tokenizer, split=split, max_seq_length=max_seq_length, source=source, num_proc=num_proc,
            short_seq_probability=short_seq_probability,
        )
        if len(rows) == 0:
            raise HfPretrainError(
                f"{source} ({split} split): too little text for one sequence of --max_seq_length {max_seq_length}; "
                "add text or lower --max_seq_length"
            )
        if split == "train":
            rows = rows.add_column("sequence_id", np.arange(len(rows), dtype=np.int64))
        out[split] = rows
    return out


def build_pretraining_dataset(
    documents: DatasetDict, tokenizer: PreTrainedTokenizerBase, objective: Objective | str = "mlm", *,
    max_seq_length: int = 128, seed: int = 0, num_proc: int | None = None, **build_options,
) -> DatasetDict:
    """Training (and validation) rows from documents (a ``text`` column per split) for ``objective``: an
    :class:`Objective`, or a registered name with default settings (``"mlm"``: packed rows; ``"mlm_nsp"``:
    ``[CLS] A [SEP] B [SEP]`` pairs with ``token_type_ids`` and ``next_sentence_label``). Validation rows are
    masked once, from the seed, so that every evaluation scores the same masks."""
    if isinstance(objective, str):
        objective = objective_class(objective)(PretrainingArguments(objective=objective), seed)
    tokenized = DatasetDict({split: tokenize_documents(docs, tokenizer, num_proc) for split, docs in documents.items()})
    return build_sequences(objective, tokenized, tokenizer, max_seq_length=max_seq_length, num_proc=num_proc,
                           **build_options)


def prepare_pretraining_data(
    objective: Objective,
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    checkpoint: str | None,
) -> PretrainingData:
    """Read the corpus (or a prepared dataset), get the tokenizer, tokenize, and build the objective's rows; with
    ``--streaming``, the rows come as the files are read (:mod:`.streaming`)."""
    if data_args.streaming:
        return prepare_streaming_data(objective, model_args, data_args, training_args, checkpoint)
    corpus = describe_corpus(data_args)
    if data_args.prepared_dataset:
        prepared, tokenizer, tokenizer_description = open_prepared(data_args, model_args)
        documents = prepared.documents
        tokenized = DatasetDict(train=prepared.tokenized["train"])
        if len(prepared.tokenized["validation"]) and data_args.validation_split_percentage > 0:
            tokenized["validation"] = prepared.tokenized["validation"]
    else:
        bad = BadInput(data_args.on_bad_input)
        documents = load_corpus(
            data_args.train_file, data_args.validation_file, data_args.dataset_name, data_args.dataset_config_name,
            data_args.text_column_name, data_args.validation_split_percentage, training_args.seed,
            data_args.max_train_documents, bad, exclude=training_args.output_dir,
        )
        if bad.counts:
            logger.warning("%s", bad.summary())
        tokenizer, tokenizer_description = prepare_tokenizer(
            documents, model_args, data_args, training_args, checkpoint, objective.default_model_type
        )
        tokenized = DatasetDict({
            split: tokenize_documents(docs, tokenizer, data_args.preprocessing_num_workers)
            for split, docs in documents.items()
        })
    sequences = build_sequences(
        objective, tokenized, tokenizer, max_seq_length=data_args.max_seq_length,
        short_seq_probability=data_args.short_seq_probability, num_proc=data_args.preprocessing_num_workers,
        source=corpus,
    )
    return PretrainingData(documents, sequences, tokenizer, corpus, tokenizer_description)

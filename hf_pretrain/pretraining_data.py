"""The pretraining dataset: documents -> tokenized sentences -> packed sequences or NSP pairs -> masks."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from datasets import Dataset, DatasetDict
from transformers import PreTrainedTokenizerBase

from .arguments import DataArguments, ModelArguments, PretrainingArguments
from .collators import DataCollatorForMaskedLM
from .corpus import load_corpus
from .errors import BadInput, HfPretrainError
from .masking import mask_dataset
from .preparation import load_prepared
from .sentence_pairs import build_nsp_pairs
from .sequences import pack_sequences, tokenize_documents
from .tokenizer import load_tokenizer, train_wordpiece_tokenizer

logger = logging.getLogger(__name__)


def describe_corpus(data_args: DataArguments) -> str:
    """The training data in words, for logs and model cards."""
    if data_args.dataset_name:
        return f"{data_args.dataset_name} ({data_args.dataset_config_name or 'default'}) from the Hub"
    if data_args.train_file:
        return ", ".join(data_args.train_file)
    return "Python standard-library docstrings (the embedded default corpus)"


def prepare_tokenizer(
    documents: DatasetDict, model_args: ModelArguments, data_args: DataArguments, training_args, checkpoint: str | None
) -> tuple[PreTrainedTokenizerBase, str]:
    """The run's tokenizer and a description of it: ``--tokenizer_name``, the model's or checkpoint's, or one
    trained on the training documents by the main process and saved to ``--output_dir`` for the others."""
    source = model_args.tokenizer_name or model_args.model_name_or_path or checkpoint
    with training_args.main_process_first(desc="training the tokenizer"):
        if source:
            return load_tokenizer(source, model_args.trust_remote_code), source
        if training_args.process_index == 0:
            tokenizer = train_wordpiece_tokenizer(
                documents["train"]["text"], model_args.vocab_size, model_args.do_lower_case,
                model_max_length=data_args.max_seq_length,
            )
            tokenizer.save_pretrained(training_args.output_dir)
        else:  # every rank takes the main process's tokenizer (training is not bit-for-bit repeatable)
            tokenizer = load_tokenizer(training_args.output_dir)
    return tokenizer, f"WordPiece trained on the corpus ({len(tokenizer)} tokens)"


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
    masking_unit: str = "token",
    span_geometric_p: float = 0.2,
    max_span_length: int = 10,
    isolate_documents: bool = False,
    duplication_factor: int = 1,
    short_seq_probability: float = 0.1,
    seed: int = 0,
    num_proc: int | None = None,
    source: str = "the corpus",
    pretokenized: bool = False,
    packed_train: Dataset | None = None,
) -> DatasetDict:
    """Training (and validation) sequences for BERT pretraining.

    With ``with_nsp`` each row is a ``[CLS] A [SEP] B [SEP]`` pair with ``token_type_ids`` and
    ``next_sentence_label``; otherwise a packed sequence (``isolate_documents``: see :func:`pack_sequences`). Static masking stores ``duplication_factor`` masked
    copies of each training row; training rows carry their index as ``sequence_id``. Validation rows are always masked once, from a fixed seed, so that every
    evaluation of a run (and of runs with the same data) scores the same masks.

    ``pretokenized`` splits (a prepared dataset's ``tokenized/``) are not tokenized again, and ``packed_train``
    (its packed sequences) stands for the packed training split when given.
    """
    masking = dict(
        mlm_probability=mlm_probability, mask_replace_prob=mask_replace_prob, random_replace_prob=random_replace_prob,
        unit=masking_unit, span_geometric_p=span_geometric_p, max_span_length=max_span_length,
    )
    out = DatasetDict()
    for split, docs in documents.items():
        tokenized = docs if pretokenized else tokenize_documents(docs, tokenizer, num_proc)
        if split == "train" and packed_train is not None and not with_nsp:
            sequences = packed_train
        elif with_nsp:
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
            sequences = pack_sequences(
                tokenized, tokenizer.cls_token_id, tokenizer.sep_token_id, max_seq_length, isolate_documents
            )
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
        if split == "train":  # what exact resume, mask keys and the sequence log identify a sequence by
            sequences = sequences.add_column("sequence_id", np.arange(len(sequences), dtype=np.int64))
        out[split] = sequences
    return out


@dataclass
class PretrainingData:
    """Everything a pretraining recipe trains on, and how the model card describes it."""

    documents: DatasetDict
    sequences: DatasetDict
    tokenizer: PreTrainedTokenizerBase
    corpus_description: str
    tokenizer_description: str


def prepare_pretraining_data(
    model_args: ModelArguments,
    data_args: DataArguments,
    objective: PretrainingArguments,
    training_args,
    checkpoint: str | None,
) -> PretrainingData:
    """The recipes' data step: read the corpus (or a prepared dataset), get the tokenizer, build (and statically
    mask) the sequences."""
    packed_train = None
    if data_args.prepared_dataset:
        prepared = load_prepared(data_args.prepared_dataset)
        if model_args.tokenizer_name:
            raise HfPretrainError("--prepared_dataset is tokenized with its own tokenizer: drop --tokenizer_name")
        tokenizer = load_tokenizer(prepared.tokenizer_path)
        tokenizer_description = f"WordPiece from the prepared dataset ({len(tokenizer)} tokens)"
        documents = prepared.documents
        splits = DatasetDict(train=prepared.tokenized["train"])
        if len(prepared.tokenized["validation"]) and data_args.validation_split_percentage > 0:
            splits["validation"] = prepared.tokenized["validation"]
        if objective.isolate_documents and prepared.max_seq_length == data_args.max_seq_length:
            packed_train = prepared.sequences.select_columns(["input_ids"])
        corpus = f"the prepared dataset {data_args.prepared_dataset}"
    else:
        bad = BadInput(data_args.on_bad_input)
        documents = load_corpus(
            data_args.train_file, data_args.validation_file, data_args.dataset_name, data_args.dataset_config_name,
            data_args.text_column_name, data_args.validation_split_percentage, training_args.seed,
            data_args.max_train_documents, bad,
        )
        if bad.counts:
            logger.warning("%s", bad.summary())
        tokenizer, tokenizer_description = prepare_tokenizer(documents, model_args, data_args, training_args, checkpoint)
        splits = documents
        corpus = describe_corpus(data_args)
    sequences = build_pretraining_dataset(
        splits, tokenizer,
        max_seq_length=data_args.max_seq_length, with_nsp=objective.with_nsp,
        static_masking=objective.masking == "static", mlm_probability=objective.mlm_probability,
        mask_replace_prob=objective.mask_replace_prob, random_replace_prob=objective.random_replace_prob,
        masking_unit=objective.masking_unit, span_geometric_p=objective.span_geometric_p,
        max_span_length=objective.max_span_length, isolate_documents=objective.isolate_documents,
        duplication_factor=objective.duplication_factor, short_seq_probability=data_args.short_seq_probability,
        seed=training_args.seed, num_proc=data_args.preprocessing_num_workers, source=corpus,
        pretokenized=bool(data_args.prepared_dataset), packed_train=packed_train,
    )
    return PretrainingData(documents, sequences, tokenizer, corpus, tokenizer_description)


def masked_lm_collator(tokenizer: PreTrainedTokenizerBase, objective: PretrainingArguments, seed: int):
    """The recipes' collator: dynamic masking as the objective's flags say (statically masked rows are padded)."""
    return DataCollatorForMaskedLM(
        tokenizer,
        mlm_probability=objective.mlm_probability,
        mask_replace_prob=objective.mask_replace_prob,
        random_replace_prob=objective.random_replace_prob,
        masking_unit=objective.masking_unit,
        span_geometric_p=objective.span_geometric_p,
        max_span_length=objective.max_span_length,
        isolate_documents=objective.isolate_documents,
        seed=seed,
    )

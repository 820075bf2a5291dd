"""The recipes' data step: read the corpus (or a prepared dataset), get the tokenizer, and let the objective build
its training and validation rows."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass

import numpy as np
from datasets import DatasetDict, IterableDataset
from transformers import PreTrainedTokenizerBase, TrainingArguments

from ..data.arguments import DataArguments
from ..data.corpus import load_corpus
from ..data.sequences import tokenize_documents
from ..data.tokenizer import load_tokenizer, train_tokenizer
from ..errors import BadInput, HfPretrainError
from ..models.arguments import ModelArguments
from ..models.loading import tokenizer_spec
from ..objectives import Objective, objective_class
from ..objectives.arguments import PretrainingArguments
from ..prepare.pipeline import load_prepared
from .distributed import broadcast_files, read_files, write_files

logger = logging.getLogger(__name__)


def describe_corpus(data_args: DataArguments) -> str:
    """The training data in words, for logs and model cards."""
    if data_args.prepared_dataset:
        return f"the prepared dataset {data_args.prepared_dataset}"
    if data_args.dataset_name:
        return f"{data_args.dataset_name} ({data_args.dataset_config_name or 'default'}) from the Hub"
    if data_args.train_file:
        return ", ".join(data_args.train_file)
    return "Python standard-library docstrings (the embedded default corpus)"


def open_prepared(data_args: DataArguments, model_args: ModelArguments):
    """``--prepared_dataset``: the preparation, its tokenizer (the one it was tokenized with: ``--tokenizer_name``
    is refused) and the tokenizer's description."""
    if model_args.tokenizer_name:
        raise HfPretrainError("--prepared_dataset is tokenized with its own tokenizer: drop --tokenizer_name")
    prepared = load_prepared(data_args.prepared_dataset)
    tokenizer = load_tokenizer(prepared.tokenizer_path)
    return prepared, tokenizer, f"WordPiece from the prepared dataset ({len(tokenizer)} tokens)"


def prepare_tokenizer(
    documents: DatasetDict, model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments,
    checkpoint: str | None, default_model_type: str = "bert",
) -> tuple[PreTrainedTokenizerBase, str]:
    """The run's tokenizer and a description of it: ``--tokenizer_name``, the model's or checkpoint's, or one
    trained on the training documents by the main process and saved to ``--output_dir`` for the others."""
    source = model_args.tokenizer_name or model_args.model_name_or_path or checkpoint
    kind, special_tokens = tokenizer_spec(model_args, default_model_type)
    if source:
        with training_args.main_process_first(desc="loading the tokenizer"):  # one download per machine
            flag = ("--tokenizer_name" if model_args.tokenizer_name else
                    "--model_name_or_path" if model_args.model_name_or_path else "resuming from the checkpoint")
            return load_tokenizer(source, model_args.trust_remote_code, flag), source
    # The global main process trains it and saves it in --output_dir; every other process, on this machine or
    # another (which may not see that folder), takes its files over the process group: Unigram training is not
    # repeatable, and one tokenizer is cheaper than one per process anyway.
    tokenizer, files = None, None
    if training_args.process_index == 0:
        tokenizer = train_tokenizer(
            documents["train"]["text"], kind, special_tokens, model_args.vocab_size, model_args.do_lower_case,
            model_max_length=data_args.max_seq_length,
        )
        files = read_files(tokenizer.save_pretrained(training_args.output_dir))
        if kind == "unigram":
            logger.warning(
                "Unigram training in tokenizers differs from process to process (WordPiece and BPE do not): "
                "to repeat this run exactly, pass --tokenizer_name %s", training_args.output_dir,
            )
    files = broadcast_files(files, training_args.device)
    if tokenizer is None:
        with tempfile.TemporaryDirectory() as folder:
            write_files(files, folder)
            tokenizer = load_tokenizer(folder)
    names = {"wordpiece": "WordPiece", "bpe": "byte-level BPE", "unigram": "Unigram"}
    return tokenizer, f"{names[kind]} trained on the corpus ({len(tokenizer)} tokens)"


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


@dataclass
class PretrainingData:
    """Everything a pretraining recipe trains on, and how the model card describes it."""

    documents: DatasetDict
    sequences: DatasetDict
    tokenizer: PreTrainedTokenizerBase
    corpus_description: str
    tokenizer_description: str

    @property
    def streamed(self) -> bool:
        return isinstance(self.sequences["train"], IterableDataset)

    @property
    def n_documents(self) -> int | str:
        """Training documents, as the model card counts them (a stream's are not counted)."""
        return "streamed (not counted)" if self.streamed else len(self.documents["train"])

    @property
    def n_sequences(self) -> int | str:
        return "streamed (not counted)" if self.streamed else len(self.sequences["train"])


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
        from .streaming import prepare_streaming_data

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

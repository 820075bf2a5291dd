"""What both data steps share (the in-memory one, :mod:`.data`, and the streamed one, :mod:`.streaming`): the
corpus in words, a prepared dataset opened with its own tokenizer, the run's tokenizer, and what a recipe trains
on (:class:`PretrainingData`)."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass

from datasets import DatasetDict, IterableDataset
from transformers import PreTrainedTokenizerBase, TrainingArguments

from ..data.arguments import DataArguments
from ..data.tokenizer import load_tokenizer, train_tokenizer
from ..errors import HfPretrainError
from ..models.arguments import ModelArguments
from ..models.loading import tokenizer_spec
from ..prepare.pipeline import load_prepared
from ..runtime.distributed import broadcast_files, read_files, write_files

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



"""``DataArguments``: where the pretraining text comes from and how it becomes sequences."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import HfPretrainError, check_bad_input_policy


@dataclass
class DataArguments:
    """Where the pretraining text comes from and how it becomes training sequences."""

    train_file: list[str] | None = field(
        default=None,
        metadata={
            "help": "Corpus files, globs or directories: plain text, JSON Lines, Parquet or WikiExtractor output, "
            "optionally .gz/.bz2/.xz/.zst. Without it (and without --dataset_name) the embedded corpus of Python "
            "standard-library docstrings is used."
        },
    )
    validation_file: list[str] | None = field(
        default=None, metadata={"help": "Validation corpus, in the same formats as --train_file."}
    )
    prepared_dataset: str | None = field(
        default=None,
        metadata={"help": "A folder written by `hf-pretrain prepare`: its cleaned, tokenized documents and its tokenizer."},
    )
    dataset_name: str | None = field(default=None, metadata={"help": "A dataset on the Hugging Face Hub."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The Hub dataset's configuration."})
    text_column_name: str = field(
        default="text", metadata={"help": "The text column of JSON Lines, Parquet, CSV, TSV and Hub datasets."}
    )
    validation_split_percentage: float = field(
        default=5.0,
        metadata={
            "help": "Without --validation_file, this percentage of documents (at least one) is held out for "
            "evaluation, chosen from the seed. 0 disables evaluation."
        },
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Read --train_file, --dataset_name (a Hub dataset, through datasets' streaming) or "
            "--prepared_dataset as a stream (corpora larger than a disk): each file is a shard, each process "
            "packs its own shards as it reads them, and a checkpoint saves each stream's position. For the "
            "objectives that train on packed rows (mlm, electra, clm, ...; `hf-pretrain flags` says which), with "
            "dynamic masking; evaluation needs --validation_file."
        },
    )
    max_seq_length: int = field(default=128, metadata={"help": "Tokens per training sequence, specials included."})
    short_seq_probability: float = field(
        default=0.1,
        metadata={"help": "NSP: probability of a shorter target length, so the model also sees short inputs (BERT)."},
    )
    max_train_documents: int | None = field(
        default=None, metadata={"help": "Keep only the first N training documents (quick experiments)."}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for sentence splitting and tokenization."}
    )
    on_bad_input: str = field(
        default="error",
        metadata={
            "help": "A malformed corpus line (not UTF-8, NUL bytes, over 16 MiB, bad JSON): 'error' stops with its "
            "file and line; 'skip' leaves it out and reports how many were skipped."
        },
    )

    def __post_init__(self) -> None:
        if sum(bool(x) for x in (self.train_file, self.dataset_name, self.prepared_dataset)) > 1:
            raise HfPretrainError("give one of --train_file, --dataset_name and --prepared_dataset")
        if self.validation_file and not (self.train_file or self.dataset_name):
            raise HfPretrainError("--validation_file needs a --train_file")
        if not 0 <= self.validation_split_percentage < 100:
            raise HfPretrainError("--validation_split_percentage must be in [0, 100)")
        if self.max_seq_length < 8:
            raise HfPretrainError("--max_seq_length must be at least 8")
        if not 0 <= self.short_seq_probability <= 1:
            raise HfPretrainError("--short_seq_probability must be in [0, 1]")
        check_bad_input_policy(self.on_bad_input)

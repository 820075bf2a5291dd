"""``PrepareArguments``: the flags of ``hf-pretrain prepare`` (the quality filters' are in :mod:`.cleaning`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import HfPretrainError, check_bad_input_policy


@dataclass
class PrepareArguments:
    """``hf-pretrain prepare``: where the raw corpus is, where the prepared dataset goes, and how it is made.
    The quality filters' flags are those of :class:`hf_pretrain.cleaning.QualityFilters`."""

    train_file: list[str] = field(
        default=None, metadata={"help": "Raw corpus files, globs or directories (the formats of pretrain_bert.py)."}
    )
    output_dir: str = field(default=None, metadata={"help": "Where the prepared dataset is written."})
    text_column_name: str = field(default="text", metadata={"help": "The text column of JSON Lines, Parquet, CSV and TSV."})
    on_bad_input: str = field(
        default="error", metadata={"help": "A malformed input line: 'error' (stop, naming it) or 'skip' (count it)."}
    )
    normalize: bool = field(
        default=True, metadata={"help": "Repair Unicode (ftfy), strip HTML and wiki markup, normalize whitespace."}
    )
    dedup_exact: bool = field(default=True, metadata={"help": "Drop documents equal to an earlier one."})
    dedup_near: bool = field(default=True, metadata={"help": "Drop near-duplicates of an earlier document (MinHash)."})
    minhash_threshold: float = field(
        default=0.8, metadata={"help": "Jaccard similarity of word 5-gram sets at which documents are near-duplicates."}
    )
    minhash_num_perm: int = field(default=128, metadata={"help": "MinHash permutations (accuracy vs. speed)."})
    semantic_dedup: bool = field(
        default=False,
        metadata={"help": "Also drop documents whose embedding is close to an earlier one's (SemDeDup: k-means, then "
                  "cosine similarity within each cluster), with the encoder --semantic_model."},
    )
    semantic_model: str | None = field(
        default=None,
        metadata={"help": "A local encoder folder for --semantic_dedup (a checkpoint hf_pretrain saved, a SimCSE one, "
                  "a sentence-transformers folder): mean-pooled, normalized last hidden states."},
    )
    semantic_threshold: float = field(
        default=0.9, metadata={"help": "Cosine similarity at which --semantic_dedup removes the later document "
                                "(the report says how many each threshold removes)."}
    )
    semantic_whiten: bool = field(
        default=True,
        metadata={"help": "Whiten the embeddings before comparing them (centre on the corpus mean, unit variance "
                  "along each principal axis): a briefly pretrained encoder's raw mean-pooled states score every pair "
                  "of documents alike (see the docs' semantic deduplication results)."},
    )
    semantic_unit: str = field(
        default="document",
        metadata={"help": "What --semantic_dedup embeds and removes: 'document', or 'paragraph' (a paragraph close "
                  "to an earlier one leaves its document; a document left with none is dropped).",
                  "choices": ["document", "paragraph"]},
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Use this tokenizer instead of training a WordPiece one on the train split."}
    )
    vocab_size: int = field(default=30522, metadata={"help": "Size of the WordPiece vocabulary to train."})
    do_lower_case: bool = field(default=True, metadata={"help": "Uncased tokenizer (BERT-uncased)."})
    max_tokenizer_documents: int = field(
        default=500_000,
        metadata={"help": "Train the tokenizer on at most this many train documents, evenly spaced over the split "
                  "(its memory grows with the text it sees)."},
    )
    max_seq_length: int = field(default=128, metadata={
        "help": "The tokenizer's model_max_length. The recipes build each objective's rows from the tokenized "
                "documents at their own --max_seq_length."})
    validation_split_percentage: float = field(default=1.0, metadata={"help": "Documents held out for validation."})
    test_split_percentage: float = field(default=1.0, metadata={"help": "Documents held out for testing."})
    seed: int = field(default=0, metadata={"help": "Seed of the split and of the MinHash permutations."})
    num_proc: int | None = field(default=None, metadata={"help": "Processes for cleaning and tokenization."})
    streaming: bool = field(
        default=False,
        metadata={"help": "Read through files on disk, for corpora larger than memory (slower)."},
    )
    num_shards: int | None = field(
        default=None,
        metadata={"help": "Write the tokenized train split in N Arrow files, the shards that `pretrain_bert.py "
                  "--prepared_dataset DIR --streaming` gives each process its own of (N at least the processes)."},
    )
    executor: str = field(
        default="local",
        metadata={"help": "Where the stages run (datatrove's executors): 'local' (processes on this machine), "
                  "'slurm' (a job array per stage, submitted with sbatch) or 'ray' (a Ray cluster). With 'local' and "
                  "--tasks 1, everything runs in this process as one preparation; the output is the same either way.",
                  "choices": ["local", "slurm", "ray"]},
    )
    tasks: int = field(
        default=1,
        metadata={"help": "Split the reading, cleaning and hashing of the input files into N tasks (contiguous runs "
                  "of the files, in order: the kept documents and their order do not depend on N). A rerun of a "
                  "killed preparation skips the tasks that finished."},
    )
    workers: int | None = field(
        default=None, metadata={"help": "Tasks run at once (local and Ray executors; Slurm: the job array's limit). "
                                "Default: all of them."}
    )
    slurm_partition: str | None = field(default=None, metadata={"help": "--executor slurm: the partition to submit to."})
    slurm_time: str = field(default="24:00:00", metadata={"help": "--executor slurm: each task's time limit."})
    cpus_per_task: int = field(default=1, metadata={"help": "--executor slurm|ray: CPUs of each task (the finish task: at least --num_proc)."})
    mem_per_cpu_gb: int = field(default=2, metadata={"help": "--executor slurm|ray: memory per CPU, in GB."})
    slurm_env_command: str | None = field(
        default=None,
        metadata={"help": "--executor slurm: the shell line that sets up the jobs' environment (default: activate the "
                  "virtual environment this command runs from)."},
    )
    overwrite_cache: bool = field(
        default=False, metadata={"help": "Prepare again even if --output_dir holds this very preparation."}
    )

    def __post_init__(self) -> None:
        if not self.train_file:
            raise HfPretrainError("--train_file is required: the raw corpus to prepare")
        if not self.output_dir:
            raise HfPretrainError("--output_dir is required: where the prepared dataset goes")
        check_bad_input_policy(self.on_bad_input)
        if self.semantic_dedup and not self.semantic_model:
            raise HfPretrainError("--semantic_dedup needs --semantic_model DIR: the local encoder that embeds documents")
        if self.semantic_model and not self.semantic_dedup:
            raise HfPretrainError("--semantic_model is read by --semantic_dedup only: add --semantic_dedup, or drop it")
        if self.semantic_model and not os.path.isfile(os.path.join(self.semantic_model, "config.json")):
            raise HfPretrainError(f"--semantic_model {self.semantic_model}: not a model folder (no config.json); pass "
                                  "a checkpoint this project saved, a SimCSE one, or a sentence-transformers folder")
        if not 0 < self.semantic_threshold <= 1:
            raise HfPretrainError("--semantic_threshold must be in (0, 1]")
        if self.semantic_unit not in ("document", "paragraph"):
            raise HfPretrainError(f"--semantic_unit {self.semantic_unit}: choose 'document' or 'paragraph'")
        if not 0 < self.minhash_threshold <= 1:
            raise HfPretrainError("--minhash_threshold must be in (0, 1]")
        if not (0 <= self.validation_split_percentage < 100 and 0 <= self.test_split_percentage < 100):
            raise HfPretrainError("--validation_split_percentage and --test_split_percentage must be in [0, 100)")
        if self.max_seq_length < 8:
            raise HfPretrainError("--max_seq_length must be at least 8")
        if self.executor not in ("local", "slurm", "ray"):
            raise HfPretrainError(f"--executor {self.executor}: choose 'local', 'slurm' or 'ray'")
        if self.tasks < 1 or (self.workers is not None and self.workers < 1):
            raise HfPretrainError("--tasks and --workers must be at least 1")
        if self.executor == "slurm" and not self.slurm_partition:
            raise HfPretrainError("--executor slurm needs --slurm_partition NAME: the partition the jobs are submitted to")
        if self.slurm_partition and self.executor != "slurm":
            raise HfPretrainError("--slurm_partition is read by --executor slurm only: add it, or drop the flag")
        if self.max_tokenizer_documents < 1:
            raise HfPretrainError("--max_tokenizer_documents must be at least 1")

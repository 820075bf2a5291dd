"""Typed argument dataclasses for the recipes, parsed by ``HfArgumentParser`` beside ``TrainingArguments``.

Names follow the Hugging Face example scripts (``run_mlm.py``, ``run_glue.py``) so their users guess them right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import HfPretrainError, check_bad_input_policy
from .masking import MASKING_UNITS

OBJECTIVES = ("mlm", "mlm_nsp")
MASKINGS = ("dynamic", "static")


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
        default="text", metadata={"help": "The text column of JSON Lines, Parquet and Hub datasets."}
    )
    validation_split_percentage: float = field(
        default=5.0,
        metadata={
            "help": "Without --validation_file, this percentage of documents (at least one) is held out for "
            "evaluation, chosen from the seed. 0 disables evaluation."
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


@dataclass
class ModelArguments:
    """The tokenizer and the BERT architecture, or a checkpoint to start from."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Continue pretraining from this checkpoint instead of a fresh model."}
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Load this tokenizer instead of training one on the corpus."}
    )
    vocab_size: int = field(default=30522, metadata={"help": "WordPiece vocabulary size of a trained tokenizer."})
    do_lower_case: bool = field(default=True, metadata={"help": "Lower-case and strip accents (uncased BERT)."})
    hidden_size: int = field(default=768, metadata={"help": "Width of the encoder."})
    num_hidden_layers: int = field(default=12, metadata={"help": "Encoder layers."})
    num_attention_heads: int = field(default=12, metadata={"help": "Attention heads per layer."})
    intermediate_size: int | None = field(default=None, metadata={"help": "Feed-forward width; 4 x hidden if unset."})
    hidden_dropout_prob: float = field(default=0.1, metadata={"help": "Dropout on hidden states."})
    attention_probs_dropout_prob: float = field(default=0.1, metadata={"help": "Dropout on attention weights."})
    max_position_embeddings: int = field(default=512, metadata={"help": "Longest sequence the model can take."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow code from a checkpoint's repository to run (off: it is unsafe)."}
    )
    use_safetensors: bool = field(
        default=True,
        metadata={"help": "Load weights from safetensors only; false also allows pickled .bin weights (trusted only)."},
    )

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise HfPretrainError(
                f"--hidden_size {self.hidden_size} is not a multiple of --num_attention_heads "
                f"{self.num_attention_heads}"
            )
        if self.vocab_size < 100:
            raise HfPretrainError("--vocab_size must be at least 100")
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size


@dataclass
class PretrainingArguments:
    """The pretraining objective: what is masked, how, and whether NSP pairs are built."""

    objective: str = field(
        default="mlm_nsp",
        metadata={"help": "'mlm' (masked LM alone, BertForMaskedLM) or 'mlm_nsp' (with next-sentence prediction)."},
    )
    masking: str = field(
        default="dynamic",
        metadata={
            "help": "'dynamic': new masks each time a sequence is seen (RoBERTa); 'static': masks drawn once at "
            "data preparation, each sequence stored --duplication_factor times (original BERT)."
        },
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "Fraction of tokens selected for prediction."})
    mask_replace_prob: float = field(
        default=0.8, metadata={"help": "Of the selected tokens, the fraction replaced by [MASK]."}
    )
    random_replace_prob: float = field(
        default=0.1, metadata={"help": "Of the selected tokens, the fraction replaced by a random token."}
    )
    duplication_factor: int = field(
        default=10, metadata={"help": "Static masking: how many differently masked copies of each sequence."}
    )
    masking_unit: str = field(
        default="token",
        metadata={
            "help": "What is selected for masking: 'token' (BERT), 'whole_word' (every sub-word of a chosen word) "
            "or 'span' (SpanBERT: spans of whole words with geometric lengths)."
        },
    )
    span_geometric_p: float = field(
        default=0.2, metadata={"help": "Span masking: p of the geometric distribution of span lengths (SpanBERT)."}
    )
    max_span_length: int = field(default=10, metadata={"help": "Span masking: longest span, in words."})
    sparse_prediction: bool = field(
        default=True,
        metadata={
            "help": "Compute the vocabulary projection and MLM loss at the masked positions only (same loss, less "
            "compute); checkpoints are unchanged."
        },
    )
    isolate_documents: bool = field(
        default=False,
        metadata={
            "help": "--objective mlm: pack several documents per sequence, each attending only to itself "
            "(block-diagonal attention, position ids restarting per document)."
        },
    )
    max_train_minutes: float | None = field(
        default=None, metadata={"help": "Stop training (and save) after this many minutes of wall-clock time."}
    )
    on_nonfinite_loss: str = field(
        default="stop",
        metadata={
            "help": "A NaN or infinite loss: 'stop' the run with an error naming the step and batch (the last "
            "checkpoint stays good) or 'skip' that optimizer step."
        },
    )
    log_sequence_ids: bool = field(
        default=False,
        metadata={"help": "Append the sequence ids of every training batch to <output_dir>/sequence_ids/ (audit)."},
    )

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise HfPretrainError(f"--objective must be one of {', '.join(OBJECTIVES)}, not '{self.objective}'")
        if self.masking not in MASKINGS:
            raise HfPretrainError(f"--masking must be one of {', '.join(MASKINGS)}, not '{self.masking}'")
        if not 0 < self.mlm_probability < 1:
            raise HfPretrainError("--mlm_probability must be in (0, 1)")
        if self.mask_replace_prob < 0 or self.random_replace_prob < 0 or (
            self.mask_replace_prob + self.random_replace_prob > 1
        ):
            raise HfPretrainError(
                "--mask_replace_prob and --random_replace_prob must be non-negative and sum to at most 1"
            )
        if self.duplication_factor < 1:
            raise HfPretrainError("--duplication_factor must be at least 1")
        if self.masking_unit not in MASKING_UNITS:
            raise HfPretrainError(
                f"--masking_unit must be one of {', '.join(MASKING_UNITS)}, not '{self.masking_unit}'"
            )
        if not 0 < self.span_geometric_p <= 1:
            raise HfPretrainError("--span_geometric_p must be in (0, 1]")
        if self.max_span_length < 1:
            raise HfPretrainError("--max_span_length must be at least 1")
        if self.on_nonfinite_loss not in ("stop", "skip"):
            raise HfPretrainError(f"--on_nonfinite_loss must be 'stop' or 'skip', not '{self.on_nonfinite_loss}'")
        if self.isolate_documents and self.with_nsp:
            raise HfPretrainError(
                "--isolate_documents packs documents for --objective mlm; NSP rows are single sentence pairs"
            )

    @property
    def with_nsp(self) -> bool:
        return self.objective == "mlm_nsp"


@dataclass
class GlueArguments:
    """Which GLUE task to fine-tune on, where its data is, and over which seeds."""

    model_name_or_path: str = field(
        default=None, metadata={"help": "The pretrained checkpoint (a save_pretrained folder or a Hub id)."}
    )
    task_name: str = field(default="mrpc", metadata={"help": "GLUE task: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli."})
    glue_dir: str | None = field(
        default=None,
        metadata={"help": "Local GLUE data in the distribution's layout (<glue_dir>/MRPC/train.tsv). Hub if unset."},
    )
    max_seq_length: int = field(default=128, metadata={"help": "Pairs are truncated to this many tokens."})
    seeds: list[int] | None = field(
        default=None, metadata={"help": "Fine-tune once per seed and report mean and std (default: --seed)."}
    )
    from_scratch: bool = field(
        default=False,
        metadata={"help": "Baseline: the checkpoint's architecture and tokenizer with randomly initialized weights."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only the first N training examples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only the first N evaluation examples."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow code from the checkpoint's repository to run (off: it is unsafe)."}
    )
    use_safetensors: bool = field(
        default=True,
        metadata={"help": "Load weights from safetensors only; false also allows pickled .bin weights (trusted only)."},
    )
    on_bad_input: str = field(
        default="error",
        metadata={
            "help": "A malformed TSV row (wrong number of fields, unknown label, not UTF-8): 'error' stops with "
            "its file and line; 'skip' leaves it out and reports how many were skipped."
        },
    )

    def __post_init__(self) -> None:
        from .glue import GLUE_TASKS

        check_bad_input_policy(self.on_bad_input)

        if not self.model_name_or_path:
            raise HfPretrainError("--model_name_or_path is required: the checkpoint to fine-tune")
        self.task_name = self.task_name.lower().replace("-", "")
        if self.task_name not in GLUE_TASKS:
            raise HfPretrainError(f"--task_name must be one of {', '.join(GLUE_TASKS)}, not '{self.task_name}'")


@dataclass
class ElectraArguments:
    """ELECTRA's generator and loss weighting; the discriminator's size comes from the ModelArguments flags."""

    generator_size: float = field(
        default=0.25,
        metadata={"help": "Generator width, heads and feed-forward size as a fraction of the discriminator's "
                  "(the paper finds 1/4 to 1/2 best)."},
    )
    discriminator_weight: float = field(
        default=50.0, metadata={"help": "λ in loss = generator MLM loss + λ · discriminator loss (paper: 50)."}
    )
    embedding_size: int | None = field(
        default=None, metadata={"help": "Width of the shared embeddings (ELECTRA-small: 128); hidden size if unset."}
    )

    def __post_init__(self) -> None:
        if not 0 < self.generator_size <= 1:
            raise HfPretrainError("--generator_size must be in (0, 1]")
        if self.discriminator_weight <= 0:
            raise HfPretrainError("--discriminator_weight must be positive")


@dataclass
class PrepareArguments:
    """``hf-pretrain prepare``: where the raw corpus is, where the prepared dataset goes, and how it is made.
    The quality filters' flags are those of :class:`hf_pretrain.cleaning.QualityFilters`."""

    train_file: list[str] = field(
        default=None, metadata={"help": "Raw corpus files, globs or directories (the formats of pretrain_bert.py)."}
    )
    output_dir: str = field(default=None, metadata={"help": "Where the prepared dataset is written."})
    text_column_name: str = field(default="text", metadata={"help": "The text field of JSON Lines and Parquet."})
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
    max_seq_length: int = field(default=128, metadata={"help": "Tokens per packed training sequence."})
    validation_split_percentage: float = field(default=1.0, metadata={"help": "Documents held out for validation."})
    test_split_percentage: float = field(default=1.0, metadata={"help": "Documents held out for testing."})
    seed: int = field(default=0, metadata={"help": "Seed of the split and of the MinHash permutations."})
    num_proc: int | None = field(default=None, metadata={"help": "Processes for cleaning and tokenization."})
    streaming: bool = field(
        default=False,
        metadata={"help": "Read and pack through files on disk, for corpora larger than memory (slower)."},
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
        if not 0 < self.minhash_threshold <= 1:
            raise HfPretrainError("--minhash_threshold must be in (0, 1]")
        if not (0 <= self.validation_split_percentage < 100 and 0 <= self.test_split_percentage < 100):
            raise HfPretrainError("--validation_split_percentage and --test_split_percentage must be in [0, 100)")
        if self.max_seq_length < 8:
            raise HfPretrainError("--max_seq_length must be at least 8")
        if self.max_tokenizer_documents < 1:
            raise HfPretrainError("--max_tokenizer_documents must be at least 1")

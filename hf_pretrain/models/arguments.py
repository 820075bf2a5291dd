"""``ModelArguments``: the architecture to pretrain, or the checkpoint to continue from, and its tokenizer."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data.tokenizer import TOKENIZER_TYPES
from ..errors import HfPretrainError


@dataclass
class ModelArguments:
    """The model (``--model_type`` with width and depth flags, ``--config_name``, or a checkpoint to continue from)
    and its tokenizer. Width and depth flags left unset keep the architecture's own defaults."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Continue pretraining this masked-LM checkpoint (domain-adaptive pretraining) instead of "
                  "starting from random weights."},
    )
    model_type: str | None = field(
        default=None,
        metadata={"help": "Any transformers model type with a masked-LM head: 'bert' (the default of the masked-LM "
                  "objectives), 'roberta', 'modernbert', ... ('electra' for --objective electra)."},
    )
    config_name: str | None = field(
        default=None, metadata={"help": "A config file or folder to start from instead of the model type's defaults."}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Config fields to override, as in run_mlm.py: \"hidden_size=256,num_hidden_layers=4\"."},
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Load this tokenizer instead of training one on the corpus."}
    )
    tokenizer_type: str | None = field(
        default=None,
        metadata={"help": "The tokenizer to train: 'wordpiece', 'bpe' (byte-level) or 'unigram'; by default the "
                  "architecture's own (WordPiece for BERT, byte-level BPE for RoBERTa and ModernBERT)."},
    )
    vocab_size: int = field(default=30522, metadata={"help": "Vocabulary size of a trained tokenizer."})
    do_lower_case: bool = field(default=True, metadata={"help": "Lower-case the text (uncased models)."})
    hidden_size: int | None = field(default=None, metadata={"help": "Width of the encoder."})
    num_hidden_layers: int | None = field(default=None, metadata={"help": "Encoder layers."})
    num_attention_heads: int | None = field(default=None, metadata={"help": "Attention heads per layer."})
    intermediate_size: int | None = field(
        default=None,
        metadata={"help": "Feed-forward width; unset, it keeps the architecture's ratio to the width (4 x for BERT)."},
    )
    hidden_dropout_prob: float | None = field(default=None, metadata={"help": "Dropout on hidden states."})
    attention_probs_dropout_prob: float | None = field(
        default=None, metadata={"help": "Dropout on attention weights."}
    )
    max_position_embeddings: int | None = field(
        default=None, metadata={"help": "Longest sequence the model can take."}
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "'sdpa', 'eager', 'flex_attention' or 'flash_attention_2' (transformers')."}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow code from a checkpoint's repository to run (off: it is unsafe)."}
    )
    use_safetensors: bool = field(
        default=True,
        metadata={"help": "Load weights from safetensors only; false also allows pickled .bin weights (trusted only)."},
    )

    def __post_init__(self) -> None:
        if self.hidden_size and self.num_attention_heads and self.hidden_size % self.num_attention_heads:
            raise HfPretrainError(
                f"--hidden_size {self.hidden_size} is not a multiple of --num_attention_heads "
                f"{self.num_attention_heads}"
            )
        if self.vocab_size < 100:
            raise HfPretrainError("--vocab_size must be at least 100")
        if self.tokenizer_type is not None and self.tokenizer_type not in TOKENIZER_TYPES:
            raise HfPretrainError(
                f"--tokenizer_type must be one of {', '.join(TOKENIZER_TYPES)}, not '{self.tokenizer_type}'"
            )
        if self.model_name_or_path and (self.config_name or self.model_type):
            raise HfPretrainError(
                "--model_name_or_path continues a checkpoint with its own architecture: drop --config_name and "
                "--model_type (use --config_overrides for dropout and the like)"
            )

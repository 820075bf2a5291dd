"""``ModelArguments``: the architecture to pretrain, or the checkpoint to continue from."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import HfPretrainError


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

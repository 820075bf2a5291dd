"""Build the BERT model to pretrain: fresh from the architecture flags, or continued from a checkpoint."""

from __future__ import annotations

from transformers import (
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .arguments import ModelArguments
from .errors import HfPretrainError


def check_vocabulary(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, where: str) -> None:
    """A tokenizer whose ids run past the model's embedding table would crash deep inside torch: refuse it now."""
    embeddings = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > embeddings:
        raise HfPretrainError(
            f"{where}: the tokenizer has {len(tokenizer)} tokens but the model's embedding table only "
            f"{embeddings}; use the tokenizer saved with the checkpoint"
        )


def build_pretraining_model(
    args: ModelArguments, tokenizer: PreTrainedTokenizerBase, with_nsp: bool, max_seq_length: int
) -> PreTrainedModel:
    """``BertForPreTraining`` (MLM + NSP) or ``BertForMaskedLM`` (MLM alone)."""
    if args.model_name_or_path:
        auto = AutoModelForPreTraining if with_nsp else AutoModelForMaskedLM
        try:
            model = auto.from_pretrained(
                args.model_name_or_path, use_safetensors=True, trust_remote_code=args.trust_remote_code
            )
        except (OSError, ValueError) as err:
            raise HfPretrainError(f"--model_name_or_path {args.model_name_or_path}: cannot load it ({err})") from None
        check_vocabulary(model, tokenizer, f"--model_name_or_path {args.model_name_or_path}")
        return model

    if max_seq_length > args.max_position_embeddings:
        raise HfPretrainError(
            f"--max_seq_length {max_seq_length} exceeds --max_position_embeddings {args.max_position_embeddings}"
        )
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads,
        intermediate_size=args.intermediate_size,
        hidden_dropout_prob=args.hidden_dropout_prob,
        attention_probs_dropout_prob=args.attention_probs_dropout_prob,
        max_position_embeddings=args.max_position_embeddings,
        type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertForPreTraining(config) if with_nsp else BertForMaskedLM(config)

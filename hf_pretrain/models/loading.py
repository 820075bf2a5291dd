"""Building the model to pretrain (fresh from the architecture flags, or continued from a checkpoint) and the checks
that make a bad checkpoint or tokenizer a one-line error instead of a crash inside torch."""

from __future__ import annotations

import os

from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    BertConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ..errors import HfPretrainError
from .arguments import ModelArguments
from .heads import TrainingBertForMaskedLM, TrainingBertForPreTraining, PretrainingForward


def checkpoint_error(path: str, err: Exception, use_safetensors: bool) -> HfPretrainError:
    """Why ``--model_name_or_path`` did not load, in one line, with the way out when only pickled weights exist."""
    hint = ""
    if use_safetensors and os.path.isfile(os.path.join(path, "pytorch_model.bin")):
        hint = "; it has pickled weights only (pytorch_model.bin): pass --use_safetensors false if you trust it"
    return HfPretrainError(f"--model_name_or_path {path}: cannot load it ({str(err).splitlines()[0]}){hint}")


def check_vocabulary(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, where: str) -> None:
    """A tokenizer whose ids run past the model's embedding table would crash deep inside torch: refuse it now."""
    embeddings = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > embeddings:
        raise HfPretrainError(
            f"{where}: the tokenizer has {len(tokenizer)} tokens but the model's embedding table only "
            f"{embeddings}; use the tokenizer saved with the checkpoint"
        )


def build_pretraining_model(
    args: ModelArguments,
    tokenizer: PreTrainedTokenizerBase,
    with_nsp: bool,
    max_seq_length: int,
    sparse_prediction: bool = True,
    isolate_documents: bool = False,
) -> PreTrainedModel:
    """BERT with MLM + NSP heads or the MLM head alone, as a training-time class (see the module's docstring).
    Checkpoints of other architectures load through the Auto classes, without sparse prediction."""
    training_class = TrainingBertForPreTraining if with_nsp else TrainingBertForMaskedLM
    if args.model_name_or_path:
        try:
            config = AutoConfig.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
            if config.model_type == "bert":
                model = training_class.from_pretrained(args.model_name_or_path, use_safetensors=args.use_safetensors)
            else:
                auto = AutoModelForPreTraining if with_nsp else AutoModelForMaskedLM
                model = auto.from_pretrained(
                    args.model_name_or_path, use_safetensors=args.use_safetensors,
                    trust_remote_code=args.trust_remote_code,
                )
        except (OSError, ValueError) as err:
            raise checkpoint_error(args.model_name_or_path, err, args.use_safetensors) from None
        check_vocabulary(model, tokenizer, f"--model_name_or_path {args.model_name_or_path}")
    else:
        if max_seq_length > args.max_position_embeddings:
            raise HfPretrainError(
                f"--max_seq_length {max_seq_length} exceeds --max_position_embeddings {args.max_position_embeddings}"
            )
        model = training_class(BertConfig(
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
        ))
    if isinstance(model, PretrainingForward):
        model.sparse_prediction = sparse_prediction
    elif isolate_documents:
        raise HfPretrainError(
            f"--isolate_documents needs a BERT model; --model_name_or_path is a {model.config.model_type}"
        )
    return model

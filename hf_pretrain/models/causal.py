"""Decoder models for the causal and prefix LM objectives: any ``AutoModelForCausalLM`` architecture (GPT-2,
Llama, ...), from a config or a checkpoint, trained as a thin subclass of its stock class that saves as the stock
class.

Packed documents stay apart through the stock models' own packed-sequence support: position ids that restart at
each document (and no padding mask) make transformers' mask factory build a causal block-diagonal mask. A prefix LM
row passes ``prefix_lengths``: the prefix attends to itself in both directions, the rest causally, through the same
factory (``block_sequence_ids``), so the mask takes the form each attention implementation needs.
"""

from __future__ import annotations

from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, PreTrainedModel, PreTrainedTokenizerBase

from ..errors import HfPretrainError
from .arguments import ModelArguments
from .architectures import architecture_for
from .heads import CausalTraining
from .loading import load_or_build


_TRAINING_CLASSES: dict[type, type] = {}


def causal_training_class(config) -> type[PreTrainedModel]:
    """The training-time subclass of the stock causal LM class of ``config``'s model type: its registered
    architecture's (:mod:`.architectures`), or one made over the stock class for any other decoder."""
    architecture = architecture_for(config.model_type)
    if architecture is not None and architecture.causal_lm is not None:
        return architecture.causal_lm
    try:
        stock = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    except KeyError:
        raise HfPretrainError(
            f"--model_type {config.model_type}: transformers has no causal LM class for it (use a decoder such as "
            "llama or gpt2 for --objective clm and prefix_lm)"
        ) from None
    if stock not in _TRAINING_CLASSES:
        _TRAINING_CLASSES[stock] = type(f"Training{stock.__name__}", (CausalTraining, stock), {})
    return _TRAINING_CLASSES[stock]


def build_causal_model(
    args: ModelArguments, tokenizer: PreTrainedTokenizerBase, max_seq_length: int, default_model_type: str = "llama"
) -> PreTrainedModel:
    """A decoder to pretrain, fresh from :func:`build_config` or continued from ``--model_name_or_path``. Its
    beginning and end of text are the tokenizer's ``[CLS]``/``<s>`` and ``[SEP]``/``</s>`` (what packed rows put
    around each document), so ``generate()`` knows where text starts and stops."""

    def decoder_class(config):
        config.is_decoder = True  # encoders with a causal LM class (BERT) attend causally only as decoders
        return causal_training_class(config)

    model = load_or_build(args, tokenizer, max_seq_length, decoder_class, default_model_type)
    begin, end = tokenizer.cls_token_id, tokenizer.sep_token_id
    for settings in (model.config, model.generation_config):
        settings.bos_token_id, settings.eos_token_id, settings.pad_token_id = begin, end, tokenizer.pad_token_id
    return model

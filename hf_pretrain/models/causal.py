"""Decoder models for the causal and prefix LM objectives: any ``AutoModelForCausalLM`` architecture (GPT-2,
Llama, ...), from a config or a checkpoint, trained as a thin subclass of its stock class that saves as the stock
class.

Packed documents stay apart through the stock models' own packed-sequence support: position ids that restart at
each document (and no padding mask) make transformers' mask factory build a causal block-diagonal mask. A prefix LM
row passes ``prefix_lengths``: the prefix attends to itself in both directions, the rest causally, through the same
factory (``block_sequence_ids``), so the mask takes the form each attention implementation needs.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import CausalLMOutputWithPast

from ..errors import HfPretrainError
from .arguments import ModelArguments
from .loading import load_or_build


class CausalTraining:
    """Mixed into a stock ``*ForCausalLM`` class: the prefix-LM mask from ``prefix_lengths``, batch-mean losses
    (Trainer averages over accumulation steps itself), and checkpoints saved under the stock class's name."""

    accepts_loss_kwargs = False

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, labels=None, prefix_lengths=None,
                **kwargs) -> CausalLMOutputWithPast:
        if prefix_lengths is not None:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            # Block 0 is the prefix (bidirectional within itself); -1 marks tokens that stay causal.
            blocks = torch.where(positions[None, :] < prefix_lengths[:, None], 0, -1)
            embeds = torch.empty(*input_ids.shape, 0, dtype=self.get_input_embeddings().weight.dtype,
                                 device=input_ids.device)
            attention_mask = create_causal_mask(self.config, embeds, attention_mask, None, position_ids=position_ids,
                                                block_sequence_ids=blocks)
        # No key-value cache in training: with one, the stock mask factory would not read packed documents from
        # the position ids.
        kwargs.setdefault("use_cache", False)
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                               labels=labels, **kwargs)

    def save_pretrained(self, save_directory, *args, is_main_process: bool = True, **kwargs):
        super().save_pretrained(save_directory, *args, is_main_process=is_main_process, **kwargs)
        if is_main_process:
            saved = self.config.__class__.from_pretrained(save_directory)
            saved.architectures = [self.stock_class.__name__]
            saved.use_cache = True  # Trainer turns the cache off while training; generation wants it back
            saved.save_pretrained(save_directory)


_TRAINING_CLASSES: dict[type, type] = {}


def causal_training_class(config) -> type[PreTrainedModel]:
    """The training-time subclass of the stock causal LM class of ``config``'s model type."""
    try:
        stock = AutoModelForCausalLM._model_mapping[type(config)]
    except KeyError:
        raise HfPretrainError(
            f"--model_type {config.model_type}: transformers has no causal LM class for it (use a decoder such as "
            "llama or gpt2 for --objective clm and prefix_lm)"
        ) from None
    if stock not in _TRAINING_CLASSES:
        _TRAINING_CLASSES[stock] = type(f"Training{stock.__name__}", (CausalTraining, stock), {"stock_class": stock})
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

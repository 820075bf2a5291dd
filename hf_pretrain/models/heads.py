"""Training-time model classes: the stock ones plus two additions that leave weights and checkpoints untouched.

*Sparse prediction* computes the vocabulary projection only at the masked positions (as Cramming, MosaicBERT and
ModernBERT do; 15-30 % of the tokens, where the full projection costs a large share of a small model's step), and
*document isolation* lets several packed documents share a row while each attends only to itself
(``document_ids``). Position ids count from 0 in every document; each architecture adds its own offset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.functional import cross_entropy
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import CausalLMOutputWithPast, MaskedLMOutput

from ..constants import IGNORE_INDEX
from .attention import document_attention_masks
from .export import ExportsStock
from .fused_loss import linear_cross_entropy


@dataclass(frozen=True)
class MaskedLMHead:
    """An architecture's MLM head split at its decoder (the vocabulary projection), so the loss can be fused with it
    (:func:`.fused_loss.linear_cross_entropy`). Called, it is the stock head: ``decoder(transform(hidden))``."""

    transform: Callable[[torch.Tensor], torch.Tensor]
    decoder: nn.Linear

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden))


class MaskedPrediction(NamedTuple):
    """What the MLM head gives: ``logits`` (``None`` when the loss was fused: they were never materialized),
    the mean ``loss`` (``None`` without labels), and ``predictions``, the argmax at the scored positions when the
    logits are not kept (the step metrics' accuracy)."""

    logits: torch.Tensor | None
    loss: torch.Tensor | None
    predictions: torch.Tensor | None = None


def vocabulary_loss(head: Callable, hidden: torch.Tensor, targets: torch.Tensor, fused: bool) -> MaskedPrediction:
    """The head at ``hidden`` (``(rows, width)``) scored against ``targets`` (one class index per row). ``fused``
    (a training step) computes the loss with the decoder a block of rows at a time and keeps no logits, where the
    head is a :class:`MaskedLMHead` and its weights are plain tensors (not DeepSpeed ZeRO-3's partitions, which are
    gathered only inside the decoder's own forward) and nothing is being compiled (inductor fuses the plain path
    itself)."""
    if (fused and torch.is_grad_enabled() and isinstance(head, MaskedLMHead) and len(targets)
            and not hasattr(head.decoder.weight, "ds_id") and not torch.compiler.is_compiling()):
        loss, predictions = linear_cross_entropy(head.transform(hidden), head.decoder, targets)
        return MaskedPrediction(None, loss, predictions)
    logits = head(hidden)
    return MaskedPrediction(logits, cross_entropy(logits.float(), targets))


def predict_masked(head: Callable, hidden: torch.Tensor, labels: torch.Tensor | None, sparse: bool,
                   fused: bool = False) -> MaskedPrediction:
    """The MLM head's logits and mean loss. ``sparse``: at the labelled positions only, ``(n_masked, vocab)``;
    otherwise at every position, ``(batch, seq, vocab)``. The loss is the same either way. ``fused`` (sparse, with
    labels): the loss without the logits, their argmax in ``predictions`` (:func:`vocabulary_loss`)."""
    if sparse and labels is not None:
        masked = labels != IGNORE_INDEX
        return vocabulary_loss(head, hidden[masked], labels[masked], fused)
    logits = head(hidden)
    loss = None if labels is None else cross_entropy(logits.view(-1, logits.shape[-1]).float(), labels.view(-1))
    return MaskedPrediction(logits, loss)


class PretrainingForward(ExportsStock):
    """Mixed into a stock ``*ForMaskedLM`` / ``*ForPreTraining`` class: the encoder pass with document isolation;
    it exports as the stock class (:mod:`.export`), so a saved model is a plain ``transformers`` one.

    A subclass names its MLM head (``mlm_head``) and, where position ids do not count from 0, their offset.
    """

    # The losses are batch means: Trainer then averages them over gradient-accumulation steps itself.
    accepts_loss_kwargs = False
    sparse_prediction: bool = True

    def mlm_head(self) -> MaskedLMHead:
        raise NotImplementedError

    def position_offset(self) -> int:
        return 0

    def document_masks(self, document_ids, attention_mask) -> dict[str, torch.Tensor]:
        dtype = self.get_input_embeddings().weight.dtype
        return document_attention_masks(self.config, document_ids, attention_mask, dtype)

    def encode(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, document_ids=None,
               **kwargs):
        """The base model's last hidden state, each packed document attending only to itself."""
        if document_ids is not None:
            attention_mask = self.document_masks(document_ids, attention_mask)["full_attention"]
        if position_ids is not None:
            position_ids = position_ids + self.position_offset()
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        base = getattr(self, self.base_model_prefix)
        return base(input_ids, attention_mask=attention_mask, position_ids=position_ids, return_dict=True, **kwargs)


@dataclass
class PretrainingMaskedLMOutput(MaskedLMOutput):
    """The stock output, plus the masked-LM loss detached for the step metrics, which would otherwise compute the
    cross-entropy over the (masked tokens x vocabulary) logits a second time (``MaskedLMMetrics``), and, where a
    training step fused the loss and kept no logits, their argmax at the masked positions."""

    mlm_loss: torch.Tensor | None = None
    mlm_predictions: torch.Tensor | None = None


class PretrainingMaskedLM(PretrainingForward):
    """The forward pass of a training-time ``*ForMaskedLM``: encode, then the head at the masked positions."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                document_ids=None, **kwargs):
        hidden = self.encode(input_ids, attention_mask, token_type_ids, position_ids, document_ids, **kwargs)
        logits, loss, predictions = predict_masked(self.mlm_head(), hidden.last_hidden_state, labels,
                                                   self.sparse_prediction, fused=self.training)
        return PretrainingMaskedLMOutput(loss=loss, logits=logits, mlm_loss=None if loss is None else loss.detach(),
                                         mlm_predictions=predictions)


class TrainingOnlyModules(ExportsStock):
    """Mixed into a training-time class that adds modules the stock class does not have (SpanBERT's boundary
    network, the token-matching head), named in ``training_only_modules``: training checkpoints keep them, so a
    resume is exact; the exported folder (:func:`.export.export_model`) is the stock class without them."""


class CausalTraining(ExportsStock):
    """Mixed into a stock ``*ForCausalLM`` class: the prefix-LM mask from ``prefix_lengths`` and batch-mean losses
    (Trainer averages over accumulation steps itself); it exports as the stock class (:mod:`.export`)."""

    accepts_loss_kwargs = False
    training_only_config = {"use_cache": True}  # Trainer turns the cache off while training; generation wants it

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


_COMBINED: dict[tuple[type, type], type] = {}


def with_training_modules(mixin: type[TrainingOnlyModules], masked_lm: type) -> type:
    """``masked_lm`` (an architecture's training-time masked-LM class) with ``mixin``'s training-only modules and
    forward pass: ``SpanBoundaryTraining`` + ``TrainingBertForMaskedLM`` is ``SpanBoundaryTrainingBertForMaskedLM``."""
    key = (mixin, masked_lm)
    if key not in _COMBINED:
        _COMBINED[key] = type(mixin.__name__.removesuffix("Training") + masked_lm.__name__, (mixin, masked_lm), {})
    return _COMBINED[key]

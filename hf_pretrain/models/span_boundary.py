"""SpanBERT's span boundary objective (Joshi et al., 2020, section 3.2) on any masked LM hf_pretrain trains.

Each masked token ``x_i`` of a span ``(s, e)`` is also predicted from the span's boundary tokens alone, the
encoder's outputs at ``s - 1`` and ``e + 1``, and an embedding of its position in the span ``i - s``: a two-layer
feed-forward network with GeLU and layer norm (the paper's), then the model's own MLM prediction head (whose
decoder is the tied input embeddings, as the paper shares them). Spans are the runs of masked positions.

The SBO network is training-only: checkpoints keep it (an exact resume needs it), the exported final folder is the
stock masked-LM class without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.utils import ModelOutput

from ..constants import IGNORE_INDEX
from .heads import TrainingOnlyModules, predict_masked, vocabulary_loss

MAX_SPAN_POSITION = 64  # relative positions beyond this share its embedding (spans of 10 words are rarely longer)


def span_boundaries(masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every position of ``masked`` (``(batch, seq)`` bool): the nearest unmasked position at or before it
    (``left``), at or after it (``right``), and its offset in its span (``i - left - 1``; meaningful where masked)."""
    length = masked.shape[1]
    index = torch.arange(length, device=masked.device).expand_as(masked)
    left = torch.cummax(torch.where(masked, 0, index), dim=1).values
    right = torch.cummin(torch.where(masked, length - 1, index).flip(1), dim=1).values.flip(1)
    return left, right, index - left - 1


class SpanBoundaryHead(nn.Module):
    """``[x_left; x_right; p_i]`` -> a hidden-size vector, through two GeLU + LayerNorm layers."""

    def __init__(self, hidden_size: int, eps: float = 1e-12) -> None:
        super().__init__()
        self.positions = nn.Embedding(MAX_SPAN_POSITION, hidden_size)
        self.layers = nn.Sequential(
            nn.Linear(3 * hidden_size, hidden_size), nn.GELU(), nn.LayerNorm(hidden_size, eps=eps),
            nn.Linear(hidden_size, hidden_size), nn.GELU(), nn.LayerNorm(hidden_size, eps=eps),
        )

    def forward(self, left: torch.Tensor, right: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        position = self.positions(offsets.clamp(0, MAX_SPAN_POSITION - 1))
        return self.layers(torch.cat([left, right, position], dim=-1))


@dataclass
class SpanBoundaryOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # the MLM head's (sparse: at the masked positions)
    mlm_loss: torch.Tensor | None = None
    mlm_predictions: torch.Tensor | None = None  # the MLM argmax where a fused loss kept no logits
    sbo_loss: torch.Tensor | None = None
    sbo_predictions: torch.Tensor | None = None  # (n_masked,) argmax of the SBO logits


class SpanBoundaryTraining(TrainingOnlyModules):
    """Mixed into an architecture's training-time masked-LM class: MLM loss + SBO loss, weighted by
    ``loss_weights`` (MLM, SBO; ``--objective_weights mlm=..,sbo=..``)."""

    loss_weights: tuple[float, float] = (1.0, 1.0)
    training_only_modules = ("sbo_head",)

    def __init__(self, config) -> None:
        super().__init__(config)
        self.sbo_head = SpanBoundaryHead(config.hidden_size, getattr(config, "layer_norm_eps", 1e-12))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                document_ids=None, **kwargs) -> SpanBoundaryOutput:
        hidden = self.encode(input_ids, attention_mask, token_type_ids, position_ids, document_ids,
                             **kwargs).last_hidden_state
        logits, mlm_loss, predictions = predict_masked(self.mlm_head(), hidden, labels, self.sparse_prediction,
                                                       fused=self.training)
        if labels is None:
            return SpanBoundaryOutput(logits=logits)
        masked = labels != IGNORE_INDEX
        left, right, offsets = span_boundaries(masked)
        rows = torch.arange(len(hidden), device=hidden.device)[:, None].expand_as(left)
        boundary = self.sbo_head(hidden[rows[masked], left[masked]], hidden[rows[masked], right[masked]],
                                 offsets[masked])
        sbo_logits, sbo_loss, sbo_predictions = vocabulary_loss(self.mlm_head(), boundary, labels[masked],
                                                                fused=self.training)
        if sbo_predictions is None:
            sbo_predictions = sbo_logits.detach().argmax(-1)
        mlm_weight, sbo_weight = self.loss_weights
        return SpanBoundaryOutput(
            loss=mlm_weight * mlm_loss + sbo_weight * sbo_loss, logits=logits, mlm_loss=mlm_loss.detach(),
            mlm_predictions=predictions, sbo_loss=sbo_loss.detach(), sbo_predictions=sbo_predictions,
        )

"""Cross-segment token matching beside masked LM, on any masked LM hf_pretrain trains.

The rows are ``[CLS] A [SEP] B [SEP]`` pairs where B is often an edited copy of A
(:func:`hf_pretrain.data.pairs.build_match_pairs`); a linear head on the encoder's output says, for every token that
is not masked, whether the other segment holds the same token. Solving it takes attention across the segments, the
skill sentence-pair tasks such as paraphrase detection need and that masked LM alone learns slowly; averaged over
the tokens, the head's output is the pair's overlap. The head is training-only: checkpoints keep it (an exact
resume needs it), the exported final folder is the stock masked-LM class without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits
from transformers.utils import ModelOutput

from ..constants import IGNORE_INDEX
from .heads import TrainingOnlyModules, predict_masked


@dataclass
class TokenMatchOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # the MLM head's (sparse: at the masked positions)
    mlm_loss: torch.Tensor | None = None
    mlm_predictions: torch.Tensor | None = None  # the MLM argmax where a fused loss kept no logits
    match_loss: torch.Tensor | None = None
    match_correct: torch.Tensor | None = None  # how many of the scored tokens the head got right
    match_total: torch.Tensor | None = None  # how many tokens were scored


def match_positions(match_labels: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """The tokens the matching head is scored on: labelled ones, less those masked for MLM (whose identity the
    input hides)."""
    scored = match_labels != IGNORE_INDEX
    return scored if labels is None else scored & (labels == IGNORE_INDEX)


class MatchScore(NamedTuple):
    loss: torch.Tensor  # mean binary cross entropy over the scored tokens
    correct: torch.Tensor  # how many of them the head got right
    total: torch.Tensor  # how many were scored


def score_matches(head: nn.Linear, hidden: torch.Tensor, match_labels: torch.Tensor,
                  labels: torch.Tensor | None) -> MatchScore:
    """The matching head on ``hidden`` (the encoder's output) at :func:`match_positions`, against ``match_labels``:
    the one scoring of every objective with token matching (``mlm_match``, ``electra_match``)."""
    scored = match_positions(match_labels, labels)
    logits = head(hidden[scored]).squeeze(-1).float()
    targets = match_labels[scored].float()
    loss = binary_cross_entropy_with_logits(logits, targets)
    return MatchScore(loss, ((logits > 0) == (targets > 0)).sum(), scored.sum())


class TokenMatchTraining(TrainingOnlyModules):
    """Mixed into an architecture's training-time masked-LM class: MLM loss + token-matching loss (binary cross
    entropy), weighted by ``loss_weights`` (MLM, match; ``--objective_weights mlm=..,match=..``)."""

    loss_weights: tuple[float, float] = (1.0, 1.0)
    training_only_modules = ("match_head",)

    def __init__(self, config) -> None:
        super().__init__(config)
        self.match_head = nn.Linear(config.hidden_size, 1)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                document_ids=None, match_labels=None, **kwargs) -> TokenMatchOutput:
        hidden = self.encode(input_ids, attention_mask, token_type_ids, position_ids, document_ids,
                             **kwargs).last_hidden_state
        logits, mlm_loss, predictions = predict_masked(self.mlm_head(), hidden, labels, self.sparse_prediction,
                                                       fused=self.training and match_labels is not None)
        if labels is None or match_labels is None:
            return TokenMatchOutput(logits=logits)
        match = score_matches(self.match_head, hidden, match_labels, labels)
        mlm_weight, match_weight = self.loss_weights
        return TokenMatchOutput(
            loss=mlm_weight * mlm_loss + match_weight * match.loss, logits=logits, mlm_loss=mlm_loss.detach(),
            mlm_predictions=predictions,
            match_loss=match.loss.detach(), match_correct=match.correct, match_total=match.total,
        )

"""Masked LM + SpanBERT's span boundary objective (Joshi et al., 2020): ``--objective mlm_sbo``.

Spans of whole words are masked (SpanBERT's geometric lengths, ``--masking_unit span``, which this objective
selects when the unit is left at its default), and every masked token is predicted twice: by the MLM head from its
own position, and from its span's two boundary tokens and its offset in the span
(:mod:`hf_pretrain.models.span_boundary`). The exported checkpoint is the stock masked-LM class; the SBO network
lives in the training checkpoints only.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..models.arguments import ModelArguments
from ..models.loading import build_pretraining_model
from ..models.span_boundary import SpanBoundaryTraining
from .base import StepMetrics
from .metrics import SpanBoundaryMetrics
from .mlm import MaskedLanguageModeling, pool_token_mean
from .registry import register_objective

logger = logging.getLogger(__name__)


@register_objective
class MaskedLMWithSpanBoundary(MaskedLanguageModeling):
    """``mlm_sbo``: packed rows, span masking, MLM + SBO losses (``--objective_weights mlm=1,sbo=1``)."""

    name = "mlm_sbo"
    title = "masked LM + span boundary objective (SpanBERT)"
    losses = ("mlm", "sbo")

    def __init__(self, args, seed, extra=None) -> None:
        super().__init__(args, seed, extra)
        if self.masking.unit == "token":
            logger.info("--objective mlm_sbo masks spans of whole words (--masking_unit span)")
            self.masking = dataclasses.replace(self.masking, unit="span")

    def build_model(
        self, model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, max_seq_length: int
    ) -> PreTrainedModel:
        model = build_pretraining_model(
            model_args, tokenizer, with_nsp=False, max_seq_length=max_seq_length,
            sparse_prediction=self.args.sparse_prediction, isolate_documents=self.args.isolate_documents,
            objective=self.name, training_modules=SpanBoundaryTraining,
        )
        model.loss_weights = tuple(self.loss_weights.values())  # (MLM, SBO)
        return pool_token_mean(model, model_args)

    def step_metrics(self) -> StepMetrics:
        return SpanBoundaryMetrics()

    def card_rows(self) -> dict[str, Any]:
        return {**super().card_rows(), "loss": self.loss_description(),
                "span boundary objective": "each masked token also predicted from its span's boundary tokens and "
                                           "its offset in the span (training only: not in this checkpoint)"}

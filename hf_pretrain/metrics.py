"""Pretraining metrics: masked-LM loss, accuracy and perplexity, NSP accuracy, computed without keeping logits."""

from __future__ import annotations

import math

import numpy as np
import torch
from transformers import EvalPrediction

from .masking import IGNORE_INDEX


def _mlm_logits(logits):
    # BertForPreTraining returns (prediction_logits, seq_relationship_logits); BertForMaskedLM the logits alone.
    return logits if isinstance(logits, torch.Tensor) else logits[0]


def preprocess_logits_for_metrics(logits, labels) -> tuple[torch.Tensor, ...]:
    """Reduce each evaluation batch to what the metrics need, so the vocabulary-sized logits are never gathered.

    Returns the MLM argmax and per-token negative log-likelihood, ``(batch, seq)`` each, and for NSP models the
    NSP argmax ``(batch,)``. Sparse-prediction logits (``(n_masked, vocab)``, at the labelled positions) are
    placed back at their positions; the others are never read.
    """
    mlm_labels = labels if isinstance(labels, torch.Tensor) else labels[0]
    mlm_logits = _mlm_logits(logits).float()
    if mlm_logits.dim() == 2:  # (n_masked, vocab)
        masked = mlm_labels != IGNORE_INDEX
        predictions = torch.zeros_like(mlm_labels)
        nll = torch.zeros(mlm_labels.shape, dtype=mlm_logits.dtype, device=mlm_logits.device)
        predictions[masked] = mlm_logits.argmax(-1)
        nll[masked] = torch.nn.functional.cross_entropy(mlm_logits, mlm_labels[masked], reduction="none")
    else:  # (batch, seq, vocab)
        predictions = mlm_logits.argmax(-1)
        nll = torch.nn.functional.cross_entropy(mlm_logits.transpose(1, 2), mlm_labels.clamp(min=0), reduction="none")
    reduced = (predictions, nll)
    if not isinstance(logits, torch.Tensor) and len(logits) > 1:
        reduced += (logits[1].argmax(-1),)
    return reduced


def compute_pretraining_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """``mlm_loss``, ``mlm_accuracy``, ``perplexity`` (of the MLM loss alone) and, with NSP, ``nsp_accuracy``."""
    predictions = prediction.predictions
    labels = prediction.label_ids
    mlm_labels = labels if isinstance(labels, np.ndarray) else labels[0]
    selected = mlm_labels != IGNORE_INDEX
    mlm_loss = float(predictions[1][selected].mean())
    metrics = {
        "mlm_loss": mlm_loss,
        "mlm_accuracy": float((predictions[0][selected] == mlm_labels[selected]).mean()),
        "perplexity": math.exp(min(mlm_loss, 50.0)),
    }
    if len(predictions) > 2:
        metrics["nsp_accuracy"] = float((predictions[2] == labels[1]).mean())
    return metrics

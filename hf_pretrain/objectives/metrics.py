"""Masked-LM step metrics: MLM loss, accuracy and perplexity, NSP accuracy, counted from the outputs the model
already computed, in training logs and in evaluation alike (no logits are gathered)."""

from __future__ import annotations

import math

import torch
from torch.nn.functional import cross_entropy

from ..constants import IGNORE_INDEX
from .base import StepMetrics


class MaskedLMMetrics(StepMetrics):
    """``mlm_loss`` (mean over the selected tokens), ``mlm_accuracy``, ``perplexity`` (of the MLM loss alone) and,
    for models with a sentence-pair head, its ``<pair>_accuracy`` and ``<pair>_loss`` (``pair``: ``nsp`` or
    ``sop``, by the labels it is trained on)."""

    names = ("mlm_nll", "mlm_correct", "mlm_selected", "nsp_correct", "nsp_total", "nsp_nll")

    def __init__(self, pair: str = "nsp") -> None:
        self.pair = pair

    def count(self, outputs, inputs) -> torch.Tensor:
        labels = inputs["labels"]
        selected = labels != IGNORE_INDEX
        targets = labels[selected]
        # A training step that fused the loss with the decoder kept no logits, only their argmax.
        predictions = outputs.get("mlm_predictions")
        logits = None
        if predictions is None:
            logits = outputs["prediction_logits"] if "prediction_logits" in outputs else outputs["logits"]
            if logits.dim() == 3:  # full logits; sparse prediction gives the selected positions alone
                logits = logits[selected]
            # max's indices are argmax's (the first of equal maxima), at 2.6x its speed in bf16 on this CPU.
            predictions = logits.max(-1).indices
        n = selected.sum()
        # Our training-time classes report their MLM loss (the mean over these tokens) alone: scaled back to a sum
        # rather than computed again over the (n_selected, vocab) logits, which with the argmax took 12 % of
        # budget_match's step on a CPU (torch profiler). A stock class's loss may be scaled for accumulation.
        mean = outputs.get("mlm_loss")
        if mean is not None:  # no selected token: the mean is 0/0, the sum 0
            nll = torch.where(n > 0, mean.double() * n, 0.0)
        else:
            nll = cross_entropy(logits.float(), targets, reduction="sum")
        counts = [nll, (predictions == targets).sum(), n]
        if "next_sentence_label" in inputs and "seq_relationship_logits" in outputs:
            nsp, pair_logits = inputs["next_sentence_label"], outputs["seq_relationship_logits"]
            counts += [(pair_logits.argmax(-1) == nsp).sum(), torch.tensor(nsp.numel()),
                       cross_entropy(pair_logits.float(), nsp.view(-1), reduction="sum")]
        else:
            counts += [torch.tensor(0), torch.tensor(0), torch.tensor(0)]
        return torch.stack([c.to(labels.device, torch.float64) for c in counts])

    def summarize(self, totals: dict[str, float]) -> dict[str, float]:
        metrics = {}
        if totals["mlm_selected"]:
            mlm_loss = totals["mlm_nll"] / totals["mlm_selected"]
            metrics["mlm_loss"] = mlm_loss
            metrics["mlm_accuracy"] = totals["mlm_correct"] / totals["mlm_selected"]
            metrics["perplexity"] = math.exp(min(mlm_loss, 50.0))
        if totals["nsp_total"]:
            metrics[f"{self.pair}_accuracy"] = totals["nsp_correct"] / totals["nsp_total"]
            metrics[f"{self.pair}_loss"] = totals["nsp_nll"] / totals["nsp_total"]
        return metrics


class CausalLMMetrics(StepMetrics):
    """``lm_loss`` (mean over the predicted tokens), next-token ``lm_accuracy`` and ``perplexity``, from the logits
    the model computed (its labels shifted by one, as the model shifts them)."""

    names = ("lm_nll", "lm_correct", "lm_tokens")

    def count(self, outputs, inputs) -> torch.Tensor:
        logits, labels = outputs["logits"][:, :-1], inputs["labels"][:, 1:]
        targets = labels != IGNORE_INDEX
        n = targets.sum()
        # The model's loss is already the mean cross-entropy over these targets (``accepts_loss_kwargs = False``):
        # scaled back to a sum rather than computed again over (tokens x vocabulary) logits, which took 15 % of a
        # 4 x 256 model's step on a CPU (measured with cProfile, clm_budget.yaml).
        if "loss" in outputs:
            nll = outputs["loss"].detach().double() * n
        else:
            nll = cross_entropy(logits[targets].float(), labels[targets], reduction="sum")
        correct = ((logits.argmax(-1) == labels) & targets).sum()
        return torch.stack([c.to(labels.device, torch.float64) for c in (nll, correct, n)])

    def summarize(self, totals: dict[str, float]) -> dict[str, float]:
        if not totals["lm_tokens"]:
            return {}
        loss = totals["lm_nll"] / totals["lm_tokens"]
        return {"lm_loss": loss, "lm_accuracy": totals["lm_correct"] / totals["lm_tokens"],
                "perplexity": math.exp(min(loss, 50.0))}


class ContrastiveMetrics(StepMetrics):
    """``contrastive_loss`` (InfoNCE, mean over anchors) and ``contrastive_accuracy`` (how often an anchor's most
    similar candidate of the batch is its positive)."""

    names = ("nce_nll", "nce_correct", "anchors")

    def count(self, outputs, inputs) -> torch.Tensor:
        logits = outputs["logits"]
        targets = torch.arange(len(logits), device=logits.device)
        counts = [cross_entropy(logits.float(), targets, reduction="sum"), (logits.argmax(-1) == targets).sum(),
                  torch.tensor(len(logits))]
        return torch.stack([c.to(logits.device, torch.float64) for c in counts])

    def summarize(self, totals: dict[str, float]) -> dict[str, float]:
        if not totals["anchors"]:
            return {}
        return {"contrastive_loss": totals["nce_nll"] / totals["anchors"],
                "contrastive_accuracy": totals["nce_correct"] / totals["anchors"]}


class SpanBoundaryMetrics(MaskedLMMetrics):
    """The masked-LM metrics, plus the span boundary objective's ``sbo_loss`` and ``sbo_accuracy`` (the masked
    tokens predicted from their span's boundaries alone)."""

    names = (*MaskedLMMetrics.names, "sbo_nll", "sbo_correct")

    def count(self, outputs, inputs) -> torch.Tensor:
        counts = super().count(outputs, inputs)
        labels = inputs["labels"]
        targets = labels[labels != IGNORE_INDEX]
        sbo = torch.stack([outputs["sbo_loss"].double() * len(targets),
                           (outputs["sbo_predictions"] == targets).sum().double()]).to(counts.device)
        return torch.cat([counts, sbo])

    def summarize(self, totals: dict[str, float]) -> dict[str, float]:
        metrics = super().summarize(totals)
        if totals["mlm_selected"]:
            metrics["sbo_loss"] = totals["sbo_nll"] / totals["mlm_selected"]
            metrics["sbo_accuracy"] = totals["sbo_correct"] / totals["mlm_selected"]
        return metrics


class WithTokenMatch(StepMetrics):
    """Mixed before an objective's metrics: the token-matching head's ``match_loss`` (mean over the scored tokens)
    and ``match_accuracy`` beside them (``mlm_match``, ``electra_match``)."""

    MATCH_NAMES = ("match_nll", "match_correct", "match_total")

    def count(self, outputs, inputs) -> torch.Tensor:
        counts = super().count(outputs, inputs)
        total = outputs["match_total"].double()
        match = torch.stack([outputs["match_loss"].double() * total, outputs["match_correct"].double(), total])
        return torch.cat([counts, match.to(counts.device)])

    def summarize(self, totals: dict[str, float]) -> dict[str, float]:
        metrics = super().summarize(totals)
        if totals["match_total"]:
            metrics["match_loss"] = totals["match_nll"] / totals["match_total"]
            metrics["match_accuracy"] = totals["match_correct"] / totals["match_total"]
        return metrics


class TokenMatchMetrics(WithTokenMatch, MaskedLMMetrics):
    """The masked-LM metrics, plus the token-matching head's ``match_loss`` and ``match_accuracy``."""

    names = (*MaskedLMMetrics.names, *WithTokenMatch.MATCH_NAMES)

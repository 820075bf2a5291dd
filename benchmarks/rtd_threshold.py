"""How far a replaced-token detector is from its training-time F1 (logit > 0), and how much of that is its generator:
the ROC AUC of its logits and the F1 at logit 0 and at the best threshold, on validation rows of a prepared dataset
masked as in training (15 %, documents kept apart), with the masked positions filled three ways: by the run's own
generator (the task it trains on), by tokens drawn at the rows' unigram frequencies, and by tokens drawn uniformly
from the vocabulary. The further the generator's F1 is under the other two, the more a harder task (a better
generator), not a discriminator that learns nothing, holds the training-time F1 down.

    python benchmarks/rtd_threshold.py --checkpoint outputs/quality/electra_budget/checkpoint-899 \\
        --prepared_dataset outputs/quality/prepared
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

SOURCES = ("generator", "unigram", "uniform")


def validation_rows(documents, tokenizer, rows: int, length: int = 128) -> torch.Tensor:
    """The first ``rows`` rows of ``length`` tokens packed from tokenized documents (a dataset with ``sentences``)
    by the recipes' own packing with ``isolate_documents``: ``[CLS] document [SEP]`` each."""
    from hf_pretrain.data.sequences import pack_sequences

    packed = pack_sequences(documents, tokenizer.cls_token_id, tokenizer.sep_token_id, length, isolate_documents=True)
    return torch.tensor(packed[:rows]["input_ids"], dtype=torch.long)


def replacement_tokens(source: str, count: int, rows: torch.Tensor, candidates: torch.Tensor,
                       generator: torch.Generator) -> torch.Tensor:
    """``count`` tokens for the masked positions of a source other than the generator: ``uniform`` over
    ``candidates`` (the vocabulary less its special tokens, as the collator's random replacements), ``unigram`` at
    the frequencies those tokens have in ``rows``."""
    if source == "uniform":
        return candidates[torch.randint(len(candidates), (count,), generator=generator)]
    if source == "unigram":
        frequencies = torch.bincount(rows.flatten(), minlength=int(candidates.max()) + 1)[candidates].float()
        return candidates[torch.multinomial(frequencies, count, replacement=True, generator=generator)]
    raise ValueError(f"unknown replacement source {source!r}: one of {', '.join(SOURCES)}")


def detection_figures(replaced: torch.Tensor, logits: torch.Tensor) -> dict[str, float]:
    """The replaced fraction, ROC AUC, and F1 at logit 0 and at the best threshold of one set of labels."""
    from sklearn.metrics import f1_score, precision_recall_curve, roc_auc_score

    replaced, logits = replaced.flatten().numpy(), logits.flatten().float().numpy()
    precision, recall, thresholds = precision_recall_curve(replaced, logits)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(f1[:-1].argmax())
    return {"replaced": float(replaced.mean()), "roc_auc": float(roc_auc_score(replaced, logits)),
            "f1_at_zero": float(f1_score(replaced, logits > 0, zero_division=0.0)),
            "best_f1": float(f1[best]), "best_logit": float(thresholds[best])}


@torch.no_grad()
def measure(model, tokenizer, rows: torch.Tensor, mlm_probability: float = 0.15, seed: int = 0):
    """Each source's figures on ``rows``: the same masked positions for all three, each document attending to
    itself only (as the recipes train with ``isolate_documents``)."""
    from hf_pretrain.constants import IGNORE_INDEX
    from hf_pretrain.models.electra import corrupt, sample_tokens
    from hf_pretrain.objectives.collators import document_positions
    from hf_pretrain.objectives.masking import replacement_token_ids, special_token_ids

    special = special_token_ids(tokenizer)
    masks = torch.Generator().manual_seed(seed)
    selected = (torch.rand(rows.shape, generator=masks) < mlm_probability) & ~torch.isin(rows, special)
    labels = torch.where(selected, rows, IGNORE_INDEX)
    masked = torch.where(selected, tokenizer.mask_token_id, rows)
    document_ids, position_ids = document_positions(rows, tokenizer.cls_token_id)
    attention_mask = torch.ones_like(rows)
    encoder_inputs = model.encoder_inputs(attention_mask, None, position_ids, document_ids)
    candidates = replacement_token_ids(tokenizer)
    figures = {}
    for source in SOURCES:
        draws = torch.Generator().manual_seed(seed + 1)
        if source == "generator":
            logits, _ = model.generator_logits(masked, labels, encoder_inputs)
            sampled = sample_tokens(logits if model.sparse_prediction else logits[selected], draws)
        else:
            sampled = replacement_tokens(source, int(selected.sum()), rows, candidates, draws)
        corrupted, replaced = corrupt(masked, labels, sampled, attention_mask)
        figures[source] = detection_figures(replaced, model.discriminator_logits(corrupted, encoder_inputs))
    return figures


def main() -> None:
    from datasets import load_from_disk
    from transformers import AutoConfig

    from hf_pretrain.data.tokenizer import load_tokenizer
    from hf_pretrain.models.architectures import architecture_for

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a training checkpoint (generator and discriminator)")
    parser.add_argument("--prepared_dataset", required=True)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--mlm_probability", type=float, default=0.15)
    args = parser.parse_args()

    model_class = architecture_for(AutoConfig.from_pretrained(args.checkpoint).model_type).replaced_token_detection
    model = model_class.from_pretrained(args.checkpoint).eval()
    tokenizer = load_tokenizer(f"{args.prepared_dataset}/tokenizer")
    rows = validation_rows(load_from_disk(f"{args.prepared_dataset}/tokenized")["validation"], tokenizer, args.rows)
    print(f"{args.checkpoint}: {rows.numel():,} validation tokens, {args.mlm_probability:.0%} masked")
    print("| masked positions filled by | replaced | ROC AUC | F1 at logit 0 | best F1 (at logit) |")
    print("|---|---|---|---|---|")
    for source, f in measure(model, tokenizer, rows, args.mlm_probability).items():
        print(f"| {source} | {f['replaced']:.3f} | {f['roc_auc']:.3f} | {f['f1_at_zero']:.3f} | "
              f"{f['best_f1']:.3f} ({f['best_logit']:.2f}) |")


if __name__ == "__main__":
    main()

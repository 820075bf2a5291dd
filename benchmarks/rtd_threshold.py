"""How far a replaced-token detector is from its training-time F1 (logit > 0): the ROC AUC of its logits and the F1
at the best threshold, on validation rows of a prepared dataset masked as in training (15 %, every one [MASK]).

    python benchmarks/rtd_threshold.py --checkpoint outputs/quality/electra_budget/checkpoint-706 \\
        --prepared_dataset outputs/quality/prepared
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def main() -> None:
    from datasets import load_from_disk
    from sklearn.metrics import precision_recall_curve, roc_auc_score
    from transformers import AutoConfig

    from hf_pretrain.constants import IGNORE_INDEX
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
    stream: list[int] = []
    for document in load_from_disk(f"{args.prepared_dataset}/tokenized")["validation"]:
        stream += [tokenizer.cls_token_id, *(t for sentence in document["sentences"] for t in sentence),
                   tokenizer.sep_token_id]
        if len(stream) >= args.rows * 128:
            break
    rows = torch.tensor(stream[: len(stream) // 128 * 128]).view(-1, 128)[: args.rows]
    selected = torch.rand(rows.shape, generator=torch.Generator().manual_seed(0)) < args.mlm_probability
    labels = torch.where(selected, rows, IGNORE_INDEX)
    with torch.no_grad():
        out = model(torch.where(selected, tokenizer.mask_token_id, rows), labels, attention_mask=torch.ones_like(rows))
    replaced, logits = out.replaced.flatten().numpy(), out.discriminator_logits.flatten().float().numpy()
    precision, recall, thresholds = precision_recall_curve(replaced, logits)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(f1[:-1].argmax())
    at_zero = f1[:-1][np.searchsorted(thresholds, 0.0).clip(max=len(thresholds) - 1)]
    print(f"{len(replaced)} tokens, {replaced.mean():.3f} replaced; ROC AUC {roc_auc_score(replaced, logits):.3f}; "
          f"F1 at logit 0 {at_zero:.3f}, best F1 {f1[best]:.3f} at logit {thresholds[best]:.2f}")


if __name__ == "__main__":
    main()

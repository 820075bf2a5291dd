"""The masked-LM training step with the loss fused with the vocabulary projection (ours,
``hf_pretrain.models.fused_loss``) against transformers' own sparse prediction (``ModernBertForMaskedLM`` with
``sparse_prediction=True``: the decoder at the masked positions, then ``cross_entropy`` over those logits), on one core.

The model is the budget presets' (ModernBERT 4 x 256, eager attention, 16,384-token vocabulary), batch 32 x 128,
30 % of the tokens masked, bf16 autocast, an AdamW step; the two classes hold the same weights and alternate in
blocks of steps in one process, so both see the same machine. Prints the median step's tokens/s of each and the
ratio, and the same for the head alone (the decoder and the loss, forward and backward).

    python benchmarks/bench_fused_loss.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM

from hf_pretrain.models.architectures.modernbert import TrainingModernBertForMaskedLM
from hf_pretrain.models.fused_loss import linear_cross_entropy


def step_seconds(model, optimizer, batch) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def head_seconds(fused: bool, hidden, decoder, targets) -> float:
    hidden = hidden.detach().requires_grad_()
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        if fused:
            loss = linear_cross_entropy(hidden, decoder, targets)[0]
        else:
            loss = torch.nn.functional.cross_entropy(decoder(hidden).float(), targets)
    loss.backward()
    decoder.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=6, help="alternations of the two classes")
    parser.add_argument("--steps", type=int, default=4, help="steps per block")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--vocab_size", type=int, default=16384)
    parser.add_argument("--mlm_probability", type=float, default=0.3)
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = ModernBertConfig(vocab_size=args.vocab_size, pad_token_id=0, cls_token_id=1, sep_token_id=2,
                              bos_token_id=1, eos_token_id=2, hidden_size=256, num_hidden_layers=4,
                              num_attention_heads=4, intermediate_size=384, max_position_embeddings=128,
                              sparse_prediction=True, attn_implementation="eager")
    stock = ModernBertForMaskedLM(config).train()
    ours = TrainingModernBertForMaskedLM(config).train()
    ours.load_state_dict(stock.state_dict())
    models = {"hf": stock, "ours": ours}
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-3) for name, model in models.items()}
    data = torch.Generator().manual_seed(0)
    tokens = args.batch_size * 128
    steps: dict[str, list[float]] = {name: [] for name in models}
    heads: dict[str, list[float]] = {name: [] for name in models}
    hidden_width = config.hidden_size
    for block in range(args.blocks):
        ids = torch.randint(5, args.vocab_size, (args.batch_size, 128), generator=data)
        masked = torch.rand(ids.shape, generator=data) < args.mlm_probability
        batch = {"input_ids": torch.where(masked, 4, ids), "labels": torch.where(masked, ids, -100)}
        hidden = torch.randn(int(masked.sum()), hidden_width, generator=data)
        for name, model in models.items():
            for step in range(args.steps):
                seconds = step_seconds(model, optimizers[name], batch)
                if block or step:  # the first step of each class warms its allocations
                    steps[name].append(seconds)
                seconds = head_seconds(name == "ours", hidden, model.decoder, ids[masked])
                if block or step:
                    heads[name].append(seconds)
    rate = {name: tokens / statistics.median(times) for name, times in steps.items()}
    head = {name: 1000 * statistics.median(times) for name, times in heads.items()}
    label = f"ModernBERT 4 x 256, batch {args.batch_size} x 128, {args.mlm_probability:.0%} masked, bf16, one core"
    print(f"MLM training step, the loss fused with the decoder vs transformers' sparse prediction ({label}): "
          f"{rate['ours'] / rate['hf']:.2f}x (ours {rate['ours']:,.0f}, hf {rate['hf']:,.0f} tokens/s)")
    print(f"MLM head forward and backward, fused vs the decoder then cross_entropy ({label}): "
          f"{head['hf'] / head['ours']:.2f}x (ours {head['ours']:,.2f}, hf {head['hf']:,.2f} ms)")


if __name__ == "__main__":
    main()

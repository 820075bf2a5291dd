"""ELECTRA's training step with the generator's tokens drawn by Gumbel-max (the sampler until 2026-12-06) and by
inverting each row's cumulative distribution (``hf_pretrain.models.electra.sample_tokens``, now), on one core.

The model is `electra_budget.yaml`'s (ModernBERT 4 x 256 discriminator, a one-layer generator sharing its
embeddings, 16,384-token vocabulary), batch 64 x 128 in bf16 autocast with an AdamW step, at 15 % and 30 % masking.
The two samplers alternate in blocks of steps in one process, so both see the same machine; the first step of each
run is left out. Prints the median step time and tokens/s of each, and the ratio.

    python benchmarks/bench_electra_sampling.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import ModernBertConfig

import hf_pretrain.models.electra as electra
from hf_pretrain.models.architectures.modernbert import ModernBertForReplacedTokenDetection


def gumbel_sample(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The former sampler: argmax of the logits plus Gumbel noise, one uniform and two logarithms per entry."""
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_(1e-9, 1.0)
    return (logits.float() - torch.log(-torch.log(uniform))).argmax(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.15, 0.30], help="masking rates")
    parser.add_argument("--blocks", type=int, default=4, help="alternations of the two samplers")
    parser.add_argument("--steps", type=int, default=3, help="steps per block")
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = ModernBertConfig(vocab_size=16384, pad_token_id=0, hidden_size=256, num_hidden_layers=4,
                              num_attention_heads=4, intermediate_size=384, max_position_embeddings=128)
    model = electra.build_electra(config, ModernBertForReplacedTokenDetection, generator_size=0.25,
                                  discriminator_weight=50.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    samplers = {"Gumbel-max": gumbel_sample, "inverse CDF": electra.sample_tokens}
    data = torch.Generator().manual_seed(0)
    tokens = args.batch_size * 128
    for rate in args.rates:
        times: dict[str, list[float]] = {name: [] for name in samplers}
        for block in range(args.blocks):
            for name, sampler in samplers.items():
                electra.sample_tokens = sampler  # the name the model's forward looks up
                for step in range(args.steps):
                    ids = torch.randint(5, 16384, (args.batch_size, 128), generator=data)
                    masked = torch.rand(ids.shape, generator=data) < rate
                    start = time.perf_counter()
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        loss = model(input_ids=torch.where(masked, 4, ids), labels=torch.where(masked, ids, -100),
                                     attention_mask=torch.ones_like(ids)).loss
                    loss.backward()
                    optimizer.step()
                    optimizer.zero_grad()
                    if block or step:
                        times[name].append(time.perf_counter() - start)
        before, now = (statistics.median(times[name]) for name in samplers)
        # Against our own former sampler, not a plain-HF way: transformers ships no ELECTRA pretraining step.
        print(f"ELECTRA step at {rate:.0%} masking, inverse CDF against Gumbel-max: {before / now:.2f}x "
              f"({tokens / now:,.0f} against {tokens / before:,.0f} tokens/s; {now:.3f} s and {before:.3f} s a step)",
              flush=True)
    electra.sample_tokens = samplers["inverse CDF"]


if __name__ == "__main__":
    main()

"""Resume cost: the time from "resume at step S" to the first training batch, ours vs transformers' way.

A large dataset of packed sequences (default 1M x 128 tokens, Arrow in memory), batch 64, through an accelerate-
prepared DataLoader with the masked-LM collator, as the Trainer builds it:

- ours: ``ResumableSampler.resume(epoch, position)`` draws the epoch's permutation and starts there;
- hf:   the Trainer's resume: a seeded random sampler and ``accelerate.skip_first_batches``, which walks the
        batch sampler past the S trained batches.

Prints `<figure>: <ratio>x (ours <value>, hf <value> <unit>)` for S = 10 and S = 10,000 (ratio ours / hf).

    python benchmarks/bench_resume.py [--sequences 1000000] [--steps 10 10000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa
from accelerate import Accelerator, skip_first_batches
from datasets import Dataset
from torch.utils.data import DataLoader, RandomSampler

from hf_pretrain import DataCollatorForMaskedLM, load_tokenizer
from hf_pretrain.data_order import ResumableSampler

BATCH = 64


def packed_dataset(n: int, length: int = 128) -> Dataset:
    tokens = np.random.default_rng(0).integers(5, 2000, size=n * length, dtype=np.int32)
    column = pa.FixedSizeListArray.from_arrays(pa.array(tokens), length)
    ids = pa.array(np.arange(n, dtype=np.int64))
    return Dataset(pa.table({"input_ids": column, "sequence_id": ids}))


def first_batch_seconds(accelerator: Accelerator, dataset: Dataset, collator, step: int, ours: bool) -> float:
    start = time.perf_counter()
    if ours:
        sampler = ResumableSampler(len(dataset), seed=0, batch_size=BATCH)
        sampler.resume(0, step * BATCH)
        loader = accelerator.prepare(DataLoader(dataset, batch_size=BATCH, sampler=sampler, collate_fn=collator))
    else:
        loader = accelerator.prepare(
            DataLoader(dataset, batch_size=BATCH, sampler=RandomSampler(dataset), collate_fn=collator)
        )
        loader = skip_first_batches(loader, step)
    next(iter(loader))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 10_000])
    args = parser.parse_args()

    dataset = packed_dataset(args.sequences)
    collator = DataCollatorForMaskedLM(load_tokenizer("tests/golden/debug_tokenizer"), seed=0)
    accelerator = Accelerator(cpu=True)
    for step in args.steps:
        ours = min(first_batch_seconds(accelerator, dataset, collator, step, ours=True) for _ in range(3))
        hf = min(first_batch_seconds(accelerator, dataset, collator, step, ours=False) for _ in range(3))
        print(f"resume to the first batch at step {step:,} ({args.sequences:,} sequences, batch {BATCH}): "
              f"{ours / hf:.2f}x (ours {ours:.3f}, hf {hf:.3f} s)", flush=True)


if __name__ == "__main__":
    main()

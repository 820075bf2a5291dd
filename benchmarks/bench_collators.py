"""Collator throughput: hf_pretrain's dynamic MLM collator vs transformers' DataCollatorForLanguageModeling.

Same features (batch 256, lengths up to 128), same tokenizer, same process, alternating rounds so both see the
same machine state. Prints `<figure>: <ratio>x (ours <value>, hf <value> <unit>)`.

    python benchmarks/bench_collators.py [--rounds 5] [--batches 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from transformers import DataCollatorForLanguageModeling

from hf_pretrain import DataCollatorForMaskedLM, stdlib_docstrings, train_wordpiece_tokenizer


def sequences_per_second(collator, batches) -> float:
    start = time.perf_counter()
    for features in batches:
        collator(features)
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch_size", type=int, default=256)
    args = parser.parse_args()

    texts = list(stdlib_docstrings()["text"])
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=8000)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    stream = np.fromiter((t for doc in ids for t in doc), dtype=np.int64)
    rng = np.random.default_rng(0)
    lengths = rng.integers(32, 129, size=args.batches * args.batch_size)
    starts = rng.integers(0, len(stream) - 130, size=len(lengths))
    features = [
        {"input_ids": [tokenizer.cls_token_id, *stream[s : s + n - 2].tolist(), tokenizer.sep_token_id]}
        for s, n in zip(starts, lengths)
    ]
    batches = [features[i : i + args.batch_size] for i in range(0, len(features), args.batch_size)]

    ours = DataCollatorForMaskedLM(tokenizer, seed=0)
    hf = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=0)
    results = {"ours": [], "hf": []}
    for _ in range(args.rounds):
        results["ours"].append(sequences_per_second(ours, batches))
        results["hf"].append(sequences_per_second(hf, batches))
    mine, theirs = statistics.median(results["ours"]), statistics.median(results["hf"])
    print(f"collator dynamic MLM (batch {args.batch_size}, <=128 tokens): {mine / theirs:.2f}x "
          f"(ours {mine:,.0f}, hf {theirs:,.0f} sequences/s)")


if __name__ == "__main__":
    main()

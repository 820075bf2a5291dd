"""Collator throughput: hf_pretrain's masked-LM collator vs transformers' DataCollatorForLanguageModeling.

Same sequences (batch 256, lengths 32-128, cut from the embedded corpus), same tokenizer, same process,
alternating rounds so both see the same machine state. Two figures: token masking, and whole-word masking (ours
reads word starts from the vocabulary's '##' marks; transformers' whole_word_mask path needs offset_mapping, which
its padding cannot pad, so its features come padded to 128 by the tokenizer).
Prints `<figure>: <ratio>x (ours <value>, hf <value> <unit>)`.

    python benchmarks/bench_collators.py [--rounds 5] [--batches 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from transformers import DataCollatorForLanguageModeling

from hf_pretrain import DataCollatorForMaskedLM, MaskingConfig, stdlib_docstrings, train_wordpiece_tokenizer


def sequences_per_second(collator, batches) -> float:
    start = time.perf_counter()
    for features in batches:
        collator(features)
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def compare(name: str, ours, hf, our_batches, hf_batches, rounds: int) -> None:
    results = {"ours": [], "hf": []}
    for _ in range(rounds):
        results["ours"].append(sequences_per_second(ours, our_batches))
        results["hf"].append(sequences_per_second(hf, hf_batches))
    mine, theirs = statistics.median(results["ours"]), statistics.median(results["hf"])
    print(f"{name}: {mine / theirs:.2f}x (ours {mine:,.0f}, hf {theirs:,.0f} sequences/s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch_size", type=int, default=256)
    args = parser.parse_args()

    texts = list(stdlib_docstrings()["text"])
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=8000)
    rng = np.random.default_rng(0)
    n = args.batches * args.batch_size
    # Real text windows, so that words split into sub-words as they do in training.
    picked = [texts[i] for i in rng.integers(0, len(texts), size=n)]
    lengths = rng.integers(32, 129, size=n)
    encoded = [
        tokenizer(text, truncation=True, max_length=int(length), return_offsets_mapping=True)
        for text, length in zip(picked, lengths)
    ]
    plain = [{"input_ids": e["input_ids"]} for e in encoded]
    with_offsets = [
        {
            "input_ids": e["input_ids"] + [tokenizer.pad_token_id] * (128 - len(e["input_ids"])),
            "offset_mapping": e["offset_mapping"] + [(0, 0)] * (128 - len(e["input_ids"])),
        }
        for e in encoded
    ]

    def batched(features):
        return [features[i : i + args.batch_size] for i in range(0, len(features), args.batch_size)]

    print(f"features: {n} sequences of {int(np.mean([len(f['input_ids']) for f in plain]))} tokens on average, "
          f"batch {args.batch_size}", flush=True)
    compare(
        f"collator dynamic MLM (batch {args.batch_size}, <=128 tokens)",
        DataCollatorForMaskedLM(tokenizer, seed=0), DataCollatorForLanguageModeling(tokenizer, seed=0),
        batched(plain), batched(plain), args.rounds,
    )
    compare(
        f"collator whole-word MLM (batch {args.batch_size}, <=128 tokens)",
        DataCollatorForMaskedLM(tokenizer, MaskingConfig(unit="whole_word"), seed=0),
        DataCollatorForLanguageModeling(tokenizer, whole_word_mask=True, seed=0),
        batched(plain), batched(with_offsets), max(1, args.rounds // 2),
    )


if __name__ == "__main__":
    main()

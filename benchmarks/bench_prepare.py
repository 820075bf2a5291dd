"""Tokenize-and-pack throughput: the preparation stage's way vs the `run_mlm.py` way, same text, same tokenizer.

Input: the cleaned documents of `../shared/data/wikipedia` (or the embedded corpus when it is absent), split into
sentences beforehand (the segmentation stage, not measured here). Both sides turn them into packed sequences of
128 tokens with the same fast WordPiece tokenizer:

- ours: ``tokenize_documents`` (batched, sentences in, token ids out) + ``pack_sequences`` (numpy, documents
  isolated);
- hf:   ``run_mlm.py``'s ``Dataset.map(tokenize_function, batched=True)`` over the text, then ``group_texts``.

Each side runs in its own process (its peak resident memory is its own). Prints
`<figure>: <ratio>x (ours <value>, hf <value> <unit>)`.

    python benchmarks/bench_prepare.py [--megabytes 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from itertools import chain
from pathlib import Path

from measure import peak_resident_mb  # benchmarks/ is the script's folder, hence on sys.path

WIKIPEDIA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "wikipedia"
MAX_LENGTH = 128


def prepare_inputs(workdir: Path, megabytes: float) -> str:
    from datasets import Dataset

    from hf_pretrain import load_documents, stdlib_docstrings, train_wordpiece_tokenizer
    from hf_pretrain.prepare.cleaning import normalize
    from hf_pretrain.data.sentences import split_sentences

    source = "Wikipedia" if WIKIPEDIA.is_dir() else "the embedded corpus"
    texts, size = [], 0
    for text in (load_documents([str(WIKIPEDIA)]) if WIKIPEDIA.is_dir() else stdlib_docstrings())["text"]:
        text = normalize(text)
        texts.append(text)
        size += len(text.encode())
        if size >= megabytes * 2**20:
            break
    Dataset.from_dict({"text": texts, "sentences": [split_sentences(t) for t in texts]}).save_to_disk(
        str(workdir / "documents")
    )
    train_wordpiece_tokenizer(texts, vocab_size=30522).save_pretrained(str(workdir / "tokenizer"))
    return f"{source}, {size / 2**20:.1f} MB of text in {len(texts):,} documents"


def run_side(side: str, workdir: Path) -> dict:
    from datasets import disable_caching, load_from_disk

    from hf_pretrain import load_tokenizer
    from hf_pretrain.data.sequences import pack_sequences, tokenize_documents

    disable_caching()  # both sides compute, neither reads the other's cache
    tokenizer = load_tokenizer(str(workdir / "tokenizer"))
    documents = load_from_disk(str(workdir / "documents"))
    megabytes = sum(len(t.encode()) for t in documents["text"]) / 2**20
    start = time.perf_counter()
    if side == "ours":
        tokenized = tokenize_documents(documents.select_columns(["sentences"]), tokenizer)
        packed = pack_sequences(tokenized, tokenizer.cls_token_id, tokenizer.sep_token_id, MAX_LENGTH,
                                isolate_documents=True)
    else:
        def tokenize_function(examples):
            return tokenizer(examples["text"], return_special_tokens_mask=True)

        def group_texts(examples):  # as run_mlm.py writes it
            concatenated = {k: list(chain(*examples[k])) for k in examples.keys()}
            total_length = (len(concatenated[list(examples.keys())[0]]) // MAX_LENGTH) * MAX_LENGTH
            return {k: [t[i : i + MAX_LENGTH] for i in range(0, total_length, MAX_LENGTH)]
                    for k, t in concatenated.items()}

        tokenized = documents.map(tokenize_function, batched=True, remove_columns=["text", "sentences"])
        packed = tokenized.map(group_texts, batched=True)
    seconds = time.perf_counter() - start
    return {"mb_per_second": megabytes / seconds, "sequences": len(packed),
            "peak_memory_mb": peak_resident_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--side", choices=["ours", "hf"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_side(args.side, Path(args.workdir))))
        return

    with tempfile.TemporaryDirectory() as workdir:
        source = prepare_inputs(Path(workdir), args.megabytes)
        results = {}
        for side in ("ours", "hf"):
            out = subprocess.run([sys.executable, __file__, "--side", side, "--workdir", workdir], check=True,
                                 stdout=subprocess.PIPE, text=True).stdout
            results[side] = json.loads(out.strip().splitlines()[-1])
    ours, hf = results["ours"], results["hf"]
    print(f"input: {source}; {ours['sequences']:,} (ours) and {hf['sequences']:,} (hf) sequences of {MAX_LENGTH}")
    print(f"tokenize and pack: {ours['mb_per_second'] / hf['mb_per_second']:.2f}x "
          f"(ours {ours['mb_per_second']:.2f}, hf {hf['mb_per_second']:.2f} MB/s)")
    print(f"tokenize and pack, peak memory: {ours['peak_memory_mb'] / hf['peak_memory_mb']:.2f}x "
          f"(ours {ours['peak_memory_mb']:,.0f}, hf {hf['peak_memory_mb']:,.0f} MB)")


if __name__ == "__main__":
    main()

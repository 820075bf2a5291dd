"""Memory of the preparation stage as the corpus grows: it should not grow with it in streaming mode.

Two measurements, each run in its own process, memory as the peak of anonymous resident memory (see
``measure.AnonymousPeak``: the Arrow files ``datasets`` memory-maps are reclaimable cache, not memory the run needs):

- deduplication (exact and MinHash near-duplicates) of synthetic documents (100 random words each; 15 % are
  near-copies of an earlier one, a word changed: Jaccard about 0.9, and 5 % copies) at ``--documents`` and four
  times as many: ours (``find_duplicates``, grouped through files on disk, ``--max_in_memory`` records sorted at
  a time: below both sizes' band records, so both runs sit at the bound) vs the datasketch way, a ``MinHashLSH``
  index in memory, queried and filled one document at a time. Prints `<figure>: <ratio>x (ours <value>, hf <value> MB)` (hf: the datasketch way).
- ``hf-pretrain prepare --streaming`` on ``--files`` files of ``../shared/data/wikipedia`` and four times as many,
  one process, the tokenizer trained on at most 200 documents in both. Prints
  `streaming prepare peak memory, 4x the corpus: <ratio>x (1x <value>, 4x <value> MB)`.

    python benchmarks/bench_prepare_memory.py [--documents 50000] [--files 8] [--max_in_memory 65536]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import AnonymousPeak  # benchmarks/ is the script's folder, hence on sys.path

WIKIPEDIA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "wikipedia"
WORDS, VOCABULARY = 100, 20_000


def synthetic_documents(path: Path, n: int) -> None:
    """``n`` documents of random words; 15 % are near-copies of earlier ones (a word changed), 5 % copies."""
    import numpy as np
    from datasets import Dataset

    rng = np.random.default_rng(0)
    words = rng.integers(0, VOCABULARY, size=(n, WORDS))
    kind = rng.random(n)
    source = (rng.random(n) * np.arange(n)).astype(np.int64)  # an earlier document
    for row in np.flatnonzero(kind < 0.2)[1:]:  # in order, so copies of copies are copies
        words[row] = words[source[row]]
        if kind[row] < 0.15:
            words[row, rng.integers(WORDS)] = rng.integers(VOCABULARY, 2 * VOCABULARY)
    texts = [" ".join(f"w{w}" for w in row) for row in words]
    Dataset.from_dict({"text": texts}).save_to_disk(str(path))


def dedup_side(side: str, corpus: Path, n: int, workdir: Path, max_in_memory: int) -> dict:
    from datasets import load_from_disk
    from datasketch import MinHash, MinHashLSH

    from hf_pretrain.prepare.dedup import find_duplicates, shingles

    documents = load_from_disk(str(corpus)).select(range(n))
    peak = AnonymousPeak()
    start = time.perf_counter()
    if side == "ours":
        removed = len(find_duplicates(documents, str(workdir / "dedup"), max_in_memory=max_in_memory).removed)
    else:
        lsh, removed, row = MinHashLSH(threshold=0.8, num_perm=128), 0, 0
        for batch in documents.iter(batch_size=1000):
            for signature in MinHash.generator((list(shingles(t)) for t in batch["text"]), num_perm=128, seed=1):
                if lsh.query(signature):
                    removed += 1
                else:
                    lsh.insert(row, signature)
                row += 1
    return {"seconds": time.perf_counter() - start, "removed": removed, "peak_mb": peak.stop()}


def prepare_side(files: list[str], workdir: Path) -> dict:
    from hf_pretrain.prepare.arguments import PrepareArguments
    from hf_pretrain.prepare.cleaning import QualityFilters
    from hf_pretrain.prepare.executor import prepare_corpus

    # One file is 36 articles: 1 % would hold out no document (refused), so 5 % for validation and no test split.
    args = PrepareArguments(train_file=files, output_dir=str(workdir / "prepared"), streaming=True,
                            max_tokenizer_documents=200, validation_split_percentage=5, test_split_percentage=0)
    peak = AnonymousPeak()
    start = time.perf_counter()
    report = prepare_corpus(args, QualityFilters())
    return {"seconds": time.perf_counter() - start, "documents": report["stages"][0]["documents"],
            "peak_mb": peak.stop()}


def run(*argv: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *argv], check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=50_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--max_in_memory", type=int, default=1 << 16)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        workdir = Path(args.workdir)
        if args.side == "prepare":
            result = prepare_side(args.inputs, workdir)
        else:
            result = dedup_side(args.side, workdir / "corpus", args.documents, workdir, args.max_in_memory)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as workdir:
        synthetic_documents(Path(workdir) / "corpus", 4 * args.documents)
        for n in (args.documents, 4 * args.documents):
            ours, hf = (run("--side", side, "--workdir", workdir, "--documents", str(n),
                            "--max_in_memory", str(args.max_in_memory)) for side in ("ours", "hf"))
            print(f"deduplication, {n:,} documents: {ours['seconds']:.1f} s (ours), {hf['seconds']:.1f} s (hf); "
                  f"{ours['removed']:,} and {hf['removed']:,} removed")
            print(f"deduplication peak memory, {n:,} documents: {ours['peak_mb'] / hf['peak_mb']:.2f}x "
                  f"(ours {ours['peak_mb']:,.0f}, hf {hf['peak_mb']:,.0f} MB)")
    if not WIKIPEDIA.is_dir():
        print(f"streaming prepare: skipped, {WIKIPEDIA} is absent")
        return
    files = sorted(str(p) for p in WIKIPEDIA.rglob("wiki_*"))
    results = []
    for count in (args.files, 4 * args.files):
        with tempfile.TemporaryDirectory() as workdir:
            results.append(run("--side", "prepare", "--workdir", workdir, "--inputs", *files[:count]))
    small, large = results
    print(f"streaming prepare: {small['documents']:,} documents in {small['seconds']:.0f} s, "
          f"{large['documents']:,} in {large['seconds']:.0f} s")
    print(f"streaming prepare peak memory, 4x the corpus: {large['peak_mb'] / small['peak_mb']:.2f}x "
          f"(1x {small['peak_mb']:,.0f}, 4x {large['peak_mb']:,.0f} MB)")


if __name__ == "__main__":
    main()

"""Semantic deduplication against MinHash, on Wikipedia with MRPC's sentence pairs injected.

The corpus: ``--wikipedia_documents`` documents of ``../shared/data/wikipedia`` and every sentence of GLUE MRPC's
*train* split as a short document of its own, shuffled in (seeded). MRPC labels each pair paraphrase or not; a
deduplicator that removes one sentence of a paraphrase pair found it (recall), one that removes one sentence of a
non-paraphrase pair removed a document it should have kept. One table: MinHash at its default (prepare's own stage)
and semantic deduplication at several thresholds, from one embedding pass (every document's highest similarity to
an earlier one of its cluster is kept, so each threshold's removals are read off it). Then:

- ``hf-pretrain prepare --semantic_dedup`` itself on the same corpus file at ``--threshold``: its kept documents
  must give the same recall as the table's row (a line says whether they do), and its report's table;
- documents embedded per second on this CPU, and the peak anonymous memory of semantic deduplication (embedding,
  k-means, search) at 1x and 4x the corpus, each in its own process.

    python benchmarks/bench_semantic_dedup.py --semantic_model outputs/quality/budget [--threshold 0.95]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from measure import AnonymousPeak  # benchmarks/ is the script's folder, hence on sys.path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)


def mrpc_pairs(path: Path) -> list[tuple[str, str, int]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(row[3], row[4], int(row[0])) for row in rows[1:] if len(row) == 5]


def build_corpus(out: Path, wikipedia_documents: int, max_pairs: int | None = None, seed: int = 0) -> dict:
    """Write the corpus (JSON Lines) and return the pairs and the Wikipedia count."""
    import numpy as np

    from hf_pretrain.data.corpus import expand_paths, read_documents

    wikipedia = []
    for path in expand_paths([str(SHARED / "wikipedia")]):
        for text in read_documents(path):
            wikipedia.append(text)
            if len(wikipedia) == wikipedia_documents:
                break
        if len(wikipedia) == wikipedia_documents:
            break
    pairs = mrpc_pairs(SHARED / "glue" / "MRPC" / "train.tsv")[:max_pairs]
    sentences = list(dict.fromkeys(s for a, b, _ in pairs for s in (a, b)))  # each distinct sentence once
    texts = wikipedia + sentences
    order = np.random.default_rng(seed).permutation(len(texts))
    with open(out, "w", encoding="utf-8") as f:
        for i in order:
            f.write(json.dumps({"text": texts[i]}) + "\n")
    return {"pairs": pairs, "wikipedia": len(wikipedia), "sentences": len(sentences), "documents": len(texts),
            "pair_count": len(pairs),
            "wikipedia_texts": wikipedia}


def pair_recall(pairs, removed_texts: set[str], normalize) -> dict:
    """Of the paraphrase and the non-paraphrase pairs, the fraction with at least one sentence removed."""
    found = {0: 0, 1: 0}
    total = {0: 0, 1: 0}
    for a, b, label in pairs:
        total[label] += 1
        found[label] += normalize(a) in removed_texts or normalize(b) in removed_texts
    return {"paraphrase": found[1] / total[1], "not_paraphrase": found[0] / total[0],
            "paraphrase_pairs": total[1], "not_paraphrase_pairs": total[0]}


def measure_table(corpus: Path, model: str, work: Path, pairs, wikipedia: list[str]) -> dict:
    """MinHash (prepare's default) and semantic deduplication at every threshold, as prepare runs them."""
    from datasets import Dataset

    from hf_pretrain.prepare.cleaning import normalize
    from hf_pretrain.prepare.dedup import find_duplicates, remove_duplicates
    from hf_pretrain.prepare.semantic import embed_documents, find_semantic_duplicates
    from hf_pretrain.rng import Stream, legacy_seed

    texts = [normalize(json.loads(line)["text"]) for line in open(corpus, encoding="utf-8")]
    articles = {normalize(text) for text in wikipedia}
    documents = Dataset.from_dict({"text": texts})
    start = time.perf_counter()
    minhash = find_duplicates(documents, str(work / "minhash"), seed=legacy_seed(Stream.MINHASH, 0))
    minhash_seconds = time.perf_counter() - start
    minhash_removed = {texts[i] for i in minhash.removed.tolist()}
    rows = [{"method": "MinHash (prepare's default: Jaccard of word 5-grams)", "threshold": 0.8,
             "removed": len(minhash_removed), "articles_removed": len(minhash_removed & articles),
             "seconds": minhash_seconds,
             **pair_recall(pairs, minhash_removed, normalize)}]
    # Semantic deduplication runs after the exact and MinHash stages, on what they keep, as in prepare.
    unique = remove_duplicates(documents, minhash)
    start = time.perf_counter()
    embeddings, rate = embed_documents(unique, model, str(work / "embeddings.npy"))
    embed_seconds = time.perf_counter() - start
    unique_texts = unique["text"]
    for whiten in (False, True):
        start = time.perf_counter()
        found = find_semantic_duplicates(embeddings, max(THRESHOLDS), seed=legacy_seed(Stream.SEMANTIC_DEDUP, 0),
                                         whiten=whiten)
        seconds = embed_seconds + time.perf_counter() - start
        for threshold in THRESHOLDS:
            removed = {unique_texts[i] for i in (found.similarity >= threshold).nonzero()[0].tolist()}
            rows.append({"method": f"semantic (SemDeDup), {'whitened' if whiten else 'raw mean pooling'}, after MinHash",
                         "whiten": whiten, "threshold": threshold, "removed": len(removed),
                         "articles_removed": len(removed & articles), "seconds": seconds,
                         **pair_recall(pairs, removed | minhash_removed, normalize)})
    return {"rows": rows, "documents_per_second": rate, "clusters": len(found.cluster_sizes)}


def run_prepare(corpus: Path, model: str, threshold: float, out: Path) -> dict:
    """``hf-pretrain prepare --semantic_dedup`` on the corpus file, every quality filter off (MRPC's sentences are
    far shorter than a filtered document may be)."""
    from hf_pretrain.prepare.cleaning import FILTERS

    command = [str(Path(sys.executable).parent / "hf-pretrain"), "prepare", "--train_file", str(corpus), "--output_dir",
               str(out), "--semantic_dedup", "--semantic_model", model, "--semantic_threshold", str(threshold),
               "--skip_filters", *FILTERS, "--validation_split_percentage", "0", "--test_split_percentage", "0",
               "--vocab_size", "8000", "--max_tokenizer_documents", "2000", "--overwrite_cache"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"prepare failed:\n{result.stderr[-3000:]}")
    report = json.loads((out / "report.json").read_text())
    return {"command": "hf-pretrain " + " ".join(command[1:]).replace(str(ROOT) + "/", ""), "seconds": time.perf_counter() - start,
            "report": report}


def memory_side(corpus: Path, model: str, copies: int, work: str) -> None:
    """Child process: semantic deduplication of ``copies`` times the corpus; prints its peak memory as JSON."""
    from datasets import Dataset, concatenate_datasets

    from hf_pretrain.prepare.semantic import embed_documents, find_semantic_duplicates

    texts = Dataset.from_json(str(corpus))
    documents = concatenate_datasets([texts] * copies)
    peak = AnonymousPeak()
    start = time.perf_counter()
    embeddings, rate = embed_documents(documents, model, str(Path(work) / f"embeddings_{copies}.npy"))
    find_semantic_duplicates(embeddings, 0.95, seed=0, whiten=True)
    print(json.dumps({"copies": copies, "documents": len(documents), "peak_mb": peak.stop(),
                      "seconds": time.perf_counter() - start, "documents_per_second": rate}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--semantic_model", required=True, help="the encoder folder (the budget or SimCSE checkpoint)")
    parser.add_argument("--wikipedia_documents", type=int, default=2000)
    parser.add_argument("--threshold", type=float, default=0.9, help="the one `prepare` itself runs at (its default)")
    parser.add_argument("--output_dir", default=str(ROOT / "outputs" / "bench_semantic_dedup"))
    parser.add_argument("--max_pairs", type=int, default=None, help="the first N MRPC pairs only (a smoke run)")
    parser.add_argument("--skip_memory", action="store_true")
    parser.add_argument("--memory_side", nargs=2, help=argparse.SUPPRESS)  # internal: COPIES WORK
    args = parser.parse_args()
    out = Path(args.output_dir)
    corpus = out / "corpus.jsonl"
    if args.memory_side:
        memory_side(corpus, args.semantic_model, int(args.memory_side[0]), args.memory_side[1])
        return
    out.mkdir(parents=True, exist_ok=True)
    built = build_corpus(corpus, args.wikipedia_documents, args.max_pairs)
    table = measure_table(corpus, args.semantic_model, out, built["pairs"], built["wikipedia_texts"])
    prepared = run_prepare(corpus, args.semantic_model, args.threshold, out / "prepared")

    from datasets import load_from_disk

    from hf_pretrain.prepare.cleaning import normalize

    kept = set(load_from_disk(str(out / "prepared" / "documents"))["train"]["text"])
    every = {normalize(json.loads(line)["text"]) for line in open(corpus, encoding="utf-8")}
    through_prepare = pair_recall(built["pairs"], every - kept, normalize)
    memory = []
    if not args.skip_memory:
        for copies in (1, 4):
            result = subprocess.run([sys.executable, __file__, "--semantic_model", args.semantic_model,
                                     "--output_dir", str(out), "--memory_side", str(copies), str(out)],
                                    capture_output=True, text=True)
            if result.returncode:
                sys.exit(f"memory side failed:\n{result.stderr[-3000:]}")
            memory.append(json.loads(result.stdout.strip().splitlines()[-1]))
    results = {"corpus": {k: v for k, v in built.items() if k not in ("pairs", "wikipedia_texts")}, "model": args.semantic_model, **table,
               "prepare": {"command": prepared["command"], "seconds": prepared["seconds"],
                           "semantic_dedup": prepared["report"].get("semantic_dedup"),
                           "recall": through_prepare},
               "memory": memory}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(markdown(results, args.threshold))


def markdown(results: dict, threshold: float) -> str:
    corpus = results["corpus"]
    lines = [f"Corpus: {corpus['wikipedia']} Wikipedia documents and the {corpus['sentences']} distinct sentences of "
             f"{corpus['pair_count']} MRPC train pairs as documents of their own ({corpus['documents']} documents); encoder `{results['model']}`, "
             f"{results['clusters']} k-means clusters.", "",
             "| method | threshold | paraphrase pairs removed (recall) | non-paraphrase pairs removed | documents removed "
             f"(of them Wikipedia articles, of {corpus['wikipedia']}) |",
             "|---|---|---|---|---|"]
    for row in results["rows"]:
        lines.append(f"| {row['method']} | {row['threshold']:g} | {100 * row['paraphrase']:.1f} % | "
                     f"{100 * row['not_paraphrase']:.1f} % | {row['removed']} ({row['articles_removed']}) |")
    minhash = results["rows"][0]["paraphrase"]
    lines.append("")
    for row in results["rows"][1:]:
        ratio = row["paraphrase"] / minhash if minhash else float("inf")
        lines.append(f"semantic recall over MinHash's, {'whitened' if row['whiten'] else 'raw'}, at {row['threshold']:g}: {ratio:.1f}x "
                     f"(non-paraphrase pairs removed {100 * row['not_paraphrase']:.1f} %)")
    through = results["prepare"]["recall"]
    at = next(r for r in results["rows"][1:] if r["threshold"] == threshold and r["whiten"])
    same = abs(through["paraphrase"] - at["paraphrase"]) < 1e-9 and abs(through["not_paraphrase"] - at["not_paraphrase"]) < 1e-9
    lines += ["", f"`{results['prepare']['command']}` ({results['prepare']['seconds']:.0f} s): recall "
              f"{100 * through['paraphrase']:.1f} %, non-paraphrase {100 * through['not_paraphrase']:.1f} % "
              f"({'the same as' if same else 'DIFFERENT FROM'} the table's whitened row at {threshold:g})",
              f"documents embedded per second (one process, this CPU): {results['documents_per_second']:.0f}"]
    for side in results["memory"]:
        lines.append(f"semantic dedup of {side['documents']} documents ({side['copies']}x the corpus): peak "
                     f"{side['peak_mb']:.0f} MB anonymous memory, {side['seconds']:.0f} s")
    if len(results["memory"]) == 2:
        lines.append(f"peak memory, 4x the corpus over 1x: {results['memory'][1]['peak_mb'] / results['memory'][0]['peak_mb']:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

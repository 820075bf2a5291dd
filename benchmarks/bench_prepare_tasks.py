"""`hf-pretrain prepare --tasks N`: throughput and memory of the preparation run as datatrove tasks, and why its
near-duplicate matching is ours rather than datatrove's MinHash stages.

1. Documents/s on the same ``--files`` Wikipedia files, in one run: the preparation in one process (`prepare`,
   today's default), and through datatrove's local executor with 1 and ``--tasks`` tasks (a worker each), beside
   one process with ``--num_proc TASKS`` (datasets' processes for each stage); each run ``--repeats`` times, the
   fastest kept. Prints `prepare documents/s, <way>: <ratio>x (ours <value>, hf <value> documents/s)`, hf being
   the one process.
2. Peak memory (anonymous resident, see ``measure.AnonymousPeak``) of each task, every task run in a process of its
   own, with ``--tasks`` tasks on ``--memory_files`` files and four times as many: flat when each task streams.
3. Deduplication, ours against datatrove's MinHash stages (signature, buckets, cluster, filter, at datatrove's
   defaults: 5-grams, 14 bands of 8 hashes), on synthetic documents: 2,000 originals, 400 near-copies at word-5-gram
   Jaccard about 0.9 (above prepare's 0.8 threshold: duplicates) and 400 at about 0.6 (below it: to keep), in
   8 files, with 1 and 2 tasks. Prints the copies each removes, and whether the kept documents are the same for
   1 and 2 tasks.

    python benchmarks/bench_prepare_tasks.py [--files 32] [--tasks 2] [--repeats 2] [--memory_files 6]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import AnonymousPeak  # benchmarks/ is the script's folder, hence on sys.path

WIKIPEDIA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "wikipedia"


def _arguments(files: list[str], output_dir: str, tasks: int, num_proc: int | None = None):
    from hf_pretrain.prepare.arguments import PrepareArguments

    # One file is about 40 articles: 1 % would hold out no document, so 5 % for validation and no test split.
    return PrepareArguments(train_file=files, output_dir=output_dir, tasks=tasks, workers=tasks, num_proc=num_proc,
                            max_tokenizer_documents=200, validation_split_percentage=5, test_split_percentage=0)


def throughput_side(way: str, files: list[str], workdir: Path, tasks: int, num_proc: int | None) -> dict:
    from hf_pretrain.prepare.cleaning import QualityFilters
    from hf_pretrain.prepare.executor import prepare_corpus, run_in_tasks
    from hf_pretrain.prepare.pipeline import check_output_dir, fingerprint

    args = _arguments(files, str(workdir), 1 if way == "one process" else tasks, num_proc)
    filters = QualityFilters()
    start = time.perf_counter()
    if way == "one process":
        report = prepare_corpus(args, filters)
    else:  # through the executor even for one task (prepare_corpus runs one local task in this process)
        check_output_dir(args.output_dir)
        report = run_in_tasks(args, filters, files, fingerprint(args, filters, files))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "documents": report["stages"][0]["documents"],
            "kept": sum(report["splits"].values())}


def memory_side(step: str, files: list[str], workdir: Path, tasks: int, rank: int) -> dict:
    """One task of one stage, as its executor runs it, in this process."""
    from hf_pretrain.prepare.cleaning import QualityFilters
    from hf_pretrain.prepare.executor import CleanFiles, Finish
    from hf_pretrain.prepare.pipeline import WORK, fingerprint

    args, filters = _arguments(files, str(workdir), tasks), QualityFilters()
    peak = AnonymousPeak()
    if step == "clean":
        CleanFiles(args, filters, files, os.path.join(args.output_dir, WORK)).run(rank=rank, world_size=tasks)
    else:
        Finish(args, filters, files, fingerprint(args, filters, files), tasks).run()
    return {"peak_mb": peak.stop()}


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))


def synthetic_corpus(folder: Path) -> dict:
    """Originals of 200 random words; near-copies at Jaccard about 0.9 and 0.6 of random earlier originals (a
    fraction of their words replaced), shuffled after the originals, in 8 Parquet files; each row has its id."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hf_pretrain.prepare.dedup import jaccard

    rng = random.Random(0)
    originals = [" ".join(_word(rng) for _ in range(200)) for _ in range(2000)]
    copies = []
    for kind, replaced in (("0.9", 0.011), ("0.6", 0.052)):
        for _ in range(400):
            source = rng.randrange(len(originals))
            words = originals[source].split()
            for i in rng.sample(range(len(words)), round(replaced * len(words))):
                words[i] = _word(rng)
            copies.append((kind, source, " ".join(words)))
    rng.shuffle(copies)
    texts = originals + [text for *_, text in copies]
    folder.mkdir(parents=True)
    per_file = -(-len(texts) // 8)
    for f in range(8):
        rows = range(f * per_file, min(len(texts), (f + 1) * per_file))
        pq.write_table(pa.table({"id": [str(i) for i in rows], "text": [texts[i] for i in rows]}),
                       folder / f"part-{f}.parquet")
    pairs = [{"kind": kind, "copy": len(originals) + k, "source": source} for k, (kind, source, _) in enumerate(copies)]
    measured = {kind: sum(jaccard(texts[p["copy"]], texts[p["source"]]) for p in pairs if p["kind"] == kind) / 400
                for kind in ("0.9", "0.6")}
    return {"pairs": pairs, "documents": len(texts), "jaccard": measured}


def datatrove_kept(corpus: Path, workdir: Path, tasks: int) -> set[int]:
    """datatrove's four MinHash stages at their defaults, with ``tasks`` reader tasks; the kept documents' ids."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.word_tokenizers import WordTokenizer

    class Words(WordTokenizer):  # prepare's shingling: lower-case words, punctuation dropped (no nltk or spaCy)
        def word_tokenize(self, text):
            return re.sub(r"\W+", " ", text.lower()).split()

        def sent_tokenize(self, text):
            return [text]

        def span_tokenize(self, text):
            return [(0, len(text))]

    # Its default shingle hash (xxhash on str) fails with xxhash 4, which datasets installs: its SHA-1 option instead.
    config, root = MinhashConfig(hash_config=HashConfig(hash_fc="sha1")), workdir / f"datatrove-{tasks}"

    def stage(pipeline, n, name, depends=None):
        return LocalPipelineExecutor(pipeline, tasks=n, workers=1, logging_dir=str(root / "logs" / name),
                                     depends=depends)

    def record_kept(data, rank: int = 0, world_size: int = 1):
        (root / "kept").mkdir(parents=True, exist_ok=True)
        with open(root / "kept" / f"{rank}.txt", "w") as f:
            f.writelines(f"{document.id}\n" for document in data)
        return []

    signatures = stage([ParquetReader(str(corpus)), MinhashDedupSignature(str(root / "sigs"), config, language=Words())],
                       tasks, "signatures")
    buckets = stage([MinhashDedupBuckets(str(root / "sigs"), str(root / "buckets"), config=config)],
                    config.num_buckets, "buckets", signatures)
    cluster = stage([MinhashDedupCluster(str(root / "buckets"), str(root / "remove"), config=config)], 1, "cluster",
                    buckets)
    stage([ParquetReader(str(corpus)), MinhashDedupFilter(str(root / "remove")), record_kept], tasks, "filter",
          cluster).run()
    return {int(line) for path in (root / "kept").iterdir() for line in path.read_text().split()}


def ours_kept(corpus: Path, workdir: Path) -> set[int]:
    from datasets import Dataset

    from hf_pretrain.prepare.dedup import find_duplicates

    import pyarrow.parquet as pq

    rows = [row for f in sorted(corpus.iterdir()) for row in pq.read_table(f).to_pylist()]
    found = find_duplicates(Dataset.from_dict({"text": [r["text"] for r in rows]}), str(workdir / "ours"))
    removed = set(found.removed.tolist())
    return {int(r["id"]) for i, r in enumerate(rows) if i not in removed}


def dedup_side(workdir: Path) -> dict:
    corpus = synthetic_corpus(workdir / "corpus")
    kept = {"ours": ours_kept(workdir / "corpus", workdir)}
    for tasks in (1, 2):
        kept[f"datatrove, {tasks} task(s)"] = datatrove_kept(workdir / "corpus", workdir, tasks)
    result = {"jaccard": corpus["jaccard"], "documents": corpus["documents"], "sides": {}}
    for side, ids in kept.items():
        collapsed = {kind: sum(1 for p in corpus["pairs"] if p["kind"] == kind and
                               not (p["copy"] in ids and p["source"] in ids)) / 400 for kind in ("0.9", "0.6")}
        result["sides"][side] = {"kept": len(ids), "pairs_collapsed": collapsed}
    result["datatrove_same_for_1_and_2_tasks"] = kept["datatrove, 1 task(s)"] == kept["datatrove, 2 task(s)"]
    result["datatrove_kept_differently"] = len(kept["datatrove, 1 task(s)"] ^ kept["datatrove, 2 task(s)"])
    return result


def run(*argv: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *argv], check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=32)
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--memory_files", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip_dedup", action="store_true", help="Leave out part 3 (about a minute).")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--num_proc", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--inputs", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        workdir = Path(args.workdir)
        if args.side in ("one process", "tasks"):
            result = throughput_side(args.side, args.inputs, workdir, args.tasks, args.num_proc)
        elif args.side in ("clean", "finish"):
            result = memory_side(args.side, args.inputs, workdir, args.tasks, args.rank)
        else:
            result = dedup_side(workdir)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as workdir:
        files = sorted(str(p) for p in WIKIPEDIA.rglob("wiki_*"))
        if not files:
            print(f"prepare in tasks: skipped ({WIKIPEDIA} is absent)")
        else:
            def fastest(*side: str) -> dict:  # each run in a fresh folder and process; the fastest of --repeats
                runs = [run(*side, "--workdir", str(Path(workdir) / f"run-{next(counter)}"),
                            "--inputs", *files[: args.files]) for _ in range(args.repeats)]
                return min(runs, key=lambda r: r["seconds"])

            counter = iter(range(10**6))
            one = fastest("--side", "one process")
            print(f"one process: {one['documents']} documents read, {one['kept']} kept, {one['seconds']:.1f} s "
                  f"(fastest of {args.repeats})")
            hf_rate = one["documents"] / one["seconds"]
            ways = [(f"one process --num_proc {args.tasks}", ("--side", "one process", "--num_proc", str(args.tasks)))]
            ways = (ways if args.tasks > 1 else []) + [
                (f"{tasks} task(s)", ("--side", "tasks", "--tasks", str(tasks))) for tasks in sorted({1, args.tasks})]
            for name, side in ways:
                ours = fastest(*side)
                assert ours["kept"] == one["kept"], (ours, one)
                rate = ours["documents"] / ours["seconds"]
                print(f"prepare documents/s, {name}: {rate / hf_rate:.2f}x (ours {rate:.1f}, hf {hf_rate:.1f} "
                      f"documents/s; {ours['seconds']:.1f} s against {one['seconds']:.1f} s)")
            peaks = {}
            for scale in (1, 4):
                inputs = files[: args.memory_files * scale]
                folder = Path(workdir) / f"memory-{scale}"
                clean = [run("--side", "clean", "--tasks", str(args.tasks), "--rank", str(rank), "--workdir",
                             str(folder), "--inputs", *inputs)["peak_mb"] for rank in range(args.tasks)]
                finish = run("--side", "finish", "--tasks", str(args.tasks), "--workdir", str(folder),
                             "--inputs", *inputs)["peak_mb"]
                peaks[scale] = (max(clean), finish, len(inputs))
            for i, stage in enumerate(("clean task", "finish task")):
                print(f"peak memory per {stage}, 4x the corpus: {peaks[4][i] / peaks[1][i]:.2f}x "
                      f"(1x {peaks[1][i]:,.0f} MB on {peaks[1][2]} files, 4x {peaks[4][i]:,.0f} MB on {peaks[4][2]})")
        if args.skip_dedup:
            return
        dedup = run("--side", "dedup", "--workdir", workdir)
        print(f"deduplication of {dedup['documents']:,} synthetic documents; measured Jaccard of the copies: "
              + ", ".join(f"{v:.2f}" for v in dedup["jaccard"].values()))
        print("| side | documents kept | copies at Jaccard 0.9 removed | copies at 0.6 removed (should stay) |")
        print("|---|---|---|---|")
        for side, row in dedup["sides"].items():
            collapsed = row["pairs_collapsed"]
            print(f"| {side} | {row['kept']:,} | {100 * collapsed['0.9']:.1f} % | {100 * collapsed['0.6']:.1f} % |")
        print(f"datatrove's kept documents the same with 1 and 2 tasks: {dedup['datatrove_same_for_1_and_2_tasks']} "
              f"({dedup['datatrove_kept_differently']} differ); ours: the same by construction (tested)")


if __name__ == "__main__":
    main()

"""Streaming and several machines, measured on this machine against the in-memory way in the same run.

Each figure is printed as `<figure>: <ratio>x (ours <value>, hf <value> <unit>)`, where "hf" is the way a
run_mlm.py user has without us: the corpus tokenized and packed in memory (a map-style `datasets` dataset) before
training starts, or reading the stream from its start to skip what a resumed run has trained.

- training tokens/s, `--streaming` vs in memory: `recipes/pretrain_bert.py`, BERT 4 x 256 with the `budget` preset's
  other settings, batch 64 x 128, one core, on ``--files`` Wikipedia files; tokens/s between the 4th and the last
  logged step; and the wall-clock time from the start of the process to the end of training.
- peak memory (anonymous resident memory, sampled every 10 ms) of the same runs on 4x the files: a stream's should
  stay flat, the in-memory way's grows with the corpus.
- resuming a stream at an early and a late position (file 1 and file 4 x ``--files`` - 1 of 4 x ``--files``, row 10):
  seconds to the first row, ours (finished files are not opened) vs reading the stream from its start up to there.
- two "machines" (two launches on 127.0.0.1, one process each) vs one machine with two processes: tokens/s.

    python benchmarks/bench_streaming.py [--files 8] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIKIPEDIA = ROOT.parent / "shared" / "data" / "wikipedia"
MODEL = ["--config", str(ROOT / "recipes" / "configs" / "budget.yaml"), "--model_type", "bert", "--intermediate_size",
         "1024", "--objective", "mlm", "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "4",
         "--max_train_minutes", "60"]


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1"}


def figure(name: str, ours: float, hf: float, unit: str, digits: int = 0) -> None:
    print(f"{name}: {ours / hf:.2f}x (ours {ours:,.{digits}f}, hf {hf:,.{digits}f} {unit})", flush=True)


def train(work: Path, name: str, files: list[str], streaming: bool, steps: int) -> dict:
    """One recipe run in a child process that samples its own peak memory; tokens/s and seconds from its logs."""
    out = work / name
    flags = [*MODEL, "--train_file", *files, "--tokenizer_name", str(work / "tokenizer"), "--max_steps", str(steps),
             "--output_dir", str(out), "--validation_split_percentage", "0"] + (["--streaming"] if streaming else [])
    child = ("import runpy, sys, json; sys.path.insert(0, 'benchmarks'); from measure import AnonymousPeak; "
             "peak = AnonymousPeak(); sys.argv = ['recipes/pretrain_bert.py'] + json.loads(sys.argv[1]); code = 0\n"
             "try:\n    runpy.run_path('recipes/pretrain_bert.py', run_name='__main__')\n"
             "except SystemExit as e:\n    code = e.code or 0\n"
             f"open({str(out) + '.peak'!r}, 'w').write(str(peak.stop()))\nsys.exit(code)")
    start = time.perf_counter()
    log = work / f"{name}.log"
    result = subprocess.run([sys.executable, "-c", child, json.dumps(flags)], cwd=ROOT, env=env(),
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    if result.returncode:
        sys.exit(f"{name} failed: see {log}")
    seconds = time.perf_counter() - start
    history = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    first, last = history[0], history[-1]
    return {"tokens_per_second": (last["num_input_tokens_seen"] - first["num_input_tokens_seen"])
            / (float(last["train_runtime"]) - float(first["train_runtime"])),
            "seconds": seconds, "peak_mb": float(Path(str(out) + ".peak").read_text())}


def resume_seconds(work: Path, files: list[str], shard: int) -> tuple[float, float]:
    """Seconds to the first row after (shard, row 10): ours, and reading the stream from its start to there."""
    from hf_pretrain.data.streaming import stream_dataset, stream_sequence_id
    from hf_pretrain.data.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(str(work / "tokenizer"))
    position = stream_sequence_id(0, shard, 10)
    start = time.perf_counter()
    ours = next(iter(stream_dataset(files, tokenizer, 128, True, start=position)))
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    rows = iter(stream_dataset(files, tokenizer, 128, True))
    read_past = next(row for row in rows if row["sequence_id"] > position)
    assert read_past == ours
    return ours_seconds, time.perf_counter() - start


def machines(work: Path, files: list[str], steps: int) -> tuple[float, float]:
    """Global tokens/s of two one-process launches (--num_machines 2) and of one two-process launch."""
    accelerate = str(Path(sys.executable).parent / "accelerate")

    def launch(out: Path, n_machines: int, rank: int, port: int) -> list[str]:
        return [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", str(n_machines),
                "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1", "--main_process_port", str(port),
                "--mixed_precision", "no", "--dynamo_backend", "no", "recipes/pretrain_bert.py", *MODEL,
                "--per_device_train_batch_size", "32", "--train_file", *files, "--tokenizer_name",
                str(work / "tokenizer"), "--max_steps", str(steps), "--validation_split_percentage", "0",
                "--output_dir", str(out)]

    def tokens_per_second(out: Path) -> float:
        history = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
        return ((history[-1]["num_input_tokens_seen"] - history[0]["num_input_tokens_seen"])
                / (float(history[-1]["train_runtime"]) - float(history[0]["train_runtime"])))

    rates = []
    for n_machines in (2, 1):
        out, port = work / f"machines-{n_machines}", free_port()
        processes = [subprocess.Popen(launch(out, n_machines, rank, port), cwd=ROOT, env=env(),
                                      stdout=open(work / f"machines-{n_machines}-{rank}.log", "w"),
                                      stderr=subprocess.STDOUT) for rank in range(n_machines)]
        if any(p.wait() for p in processes):
            sys.exit(f"the {n_machines}-machine run failed: see {work}/machines-{n_machines}-*.log")
        rates.append(tokens_per_second(out))
    return rates[0], rates[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8, help="Wikipedia files of the smaller corpus")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--output_dir", default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    if not WIKIPEDIA.is_dir():
        print(f"streaming: skipped ({WIKIPEDIA} is not present)")
        return
    from hf_pretrain.data.corpus import expand_paths, read_documents
    from hf_pretrain.data.tokenizer import train_wordpiece_tokenizer

    files = expand_paths([str(WIKIPEDIA)])
    small, large = files[: args.files], files[: 4 * args.files]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.output_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        texts = list(islice((t for path in small for t in read_documents(path)), 200))
        train_wordpiece_tokenizer(texts, vocab_size=16384, model_max_length=128).save_pretrained(str(work / "tokenizer"))

        runs = {(mode, size): train(work, f"{mode}-{size}", corpus, mode == "streamed", args.steps)
                for size, corpus in (("1x", small), ("4x", large)) for mode in ("streamed", "in-memory")}
        s, m = runs["streamed", "1x"], runs["in-memory", "1x"]
        figure(f"training tokens/s, --streaming vs in memory, {len(small)} files", s["tokens_per_second"],
               m["tokens_per_second"], "tokens/s")
        figure(f"process start to end of {args.steps} steps, {len(small)} files", s["seconds"], m["seconds"], "s", 1)
        for mode, article in (("streamed", "a"), ("in-memory", "an")):
            figure(f"peak memory of {article} {mode} run, 4x the corpus ({len(large)} vs {len(small)} files)",
                   runs[mode, "4x"]["peak_mb"], runs[mode, "1x"]["peak_mb"], "MB (hf: the 1x corpus)")
        figure(f"peak memory, --streaming vs in memory, {len(large)} files", runs["streamed", "4x"]["peak_mb"],
               runs["in-memory", "4x"]["peak_mb"], "MB")
        for where, shard in (("early (file 1)", 1), (f"late (file {len(large) - 1})", len(large) - 1)):
            ours, read_past = resume_seconds(work, large, shard)
            figure(f"resuming a stream {where} of {len(large)}, seconds to the first row", ours, read_past, "s", 2)
        two, one = machines(work, small, max(8, args.steps // 2))
        figure("2 machines x 1 process vs 1 machine x 2 processes, training tokens/s", two, one, "tokens/s")


if __name__ == "__main__":
    main()

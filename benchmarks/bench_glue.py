"""The GLUE table of pretrained checkpoints: MRPC, SST-2 and STS-B dev, each fine-tuned and linearly probed over
seeds, from each checkpoint and from random initialization of the same architecture, with the GLUE-style average.

    python benchmarks/bench_glue.py --checkpoint outputs/budget --glue_dir ../shared/data/glue
    make bench-glue CKPT="outputs/budget outputs/budget_match"      # several checkpoints, one random-init column

Every cell is ``recipes/finetune_glue.py`` with ``recipes/configs/glue.yaml`` (3 epochs, batch 32; STS-B 3 epochs
here too, --task_overrides) in bf16 where this core multiplies it faster (``--bf16 auto``), over the same seeds: full
fine-tuning at each rate of --learning_rates (1e-4 and 3e-4) and the linear probe (the encoder frozen, its head
trained: what pretraining put in the encoder without fine-tuning's help) at each of --probe_learning_rates (1e-3 and
1e-2). Every cell reports its best rate on dev, for every column alike, as Turc et al. tuned the BERT miniatures: a
pretrained encoder and a random one do not share a best rate (docs/results.md, 2026-12-06: at glue.yaml's 1e-4 a
30-minute checkpoint is under-trained on SST-2 while random init is not). SST-2 trains on its first
--sst2_train_samples examples (4,000 of 67,349) so that a cell costs minutes; every dev set is whole. A task's score is the GLUE one
(``hf_pretrain.glue.score``: MRPC the mean of F1 and accuracy, STS-B of Pearson and Spearman, SST-2 accuracy), the
average is over the three. Cells run --jobs at a time, each on one core. A cell that a run of the same command
finished (its ``cell.json``) is read back rather than trained again, so a table can be built in parts: the
random-init column (``--inits random --random_from`` a folder of the same architecture) while the checkpoint pretrains.

The far anchor, printed beside and not measured here: Google's BERT-Mini, the same 4 x 256 size fully pretrained
(Turc et al., 2019, GLUE test sets): MRPC 81.1 F1 / 71.8 accuracy, SST-2 85.9, STS-B 75.4 Pearson (its score here).
Writes ``results.md`` and ``results.json`` to --output_dir.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hf_pretrain.glue.score import average_score, task_score

ROOT = Path(__file__).resolve().parent.parent

TASKS = ("mrpc", "sst2", "stsb")
METHODS = {"full": ["--adaptation", "full"], "probe": ["--adaptation", "linear_probe"]}
# Each method's first rate names its cells' folders plainly (the others get "-lr<rate>"): tables built before the grid
# are read back.
PROBE_LEARNING_RATE = "1e-3"
DEFAULT_LEARNING_RATE = "1e-4"
# The table's protocol (README, docs/results.md): each cell at its best of two rates; SST-2 on 4,000 examples and
# STS-B at 3 epochs (glue.yaml's 5 for a user's run) so that the whole table costs about 2 hours on 2 cores.
LEARNING_RATES = [DEFAULT_LEARNING_RATE, "3e-4"]
PROBE_LEARNING_RATES = [PROBE_LEARNING_RATE, "1e-2"]
SST2_TRAIN_SAMPLES = 4000
TASK_OVERRIDES = '{"stsb": {"num_train_epochs": 3}}'
BERT_MINI = {"mrpc": (81.1 + 71.8) / 2, "sst2": 85.9, "stsb": 75.4}  # Turc et al. (2019), test sets
# The longest cells first, so that the last ones to finish are short (STS-B's are the longest).
ORDER = {"stsb": 0, "mrpc": 1, "sst2": 2}


def cell_command(checkpoint: str, task: str, method: str, learning_rate: str, random_init: bool, folder: Path,
                 args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "recipes/finetune_glue.py", "--config", "recipes/configs/glue.yaml",
               "--model_name_or_path", checkpoint, "--task_name", task, "--glue_dir", args.glue_dir,
               "--output_dir", str(folder), "--seeds", *args.seeds, "--bf16", "auto", *METHODS[method],
               "--learning_rate", learning_rate]
    command += ["--from_scratch"] if random_init else []
    samples = args.sst2_train_samples if task == "sst2" else args.max_train_samples
    command += ["--max_train_samples", str(samples)] if samples else []
    command += ["--task_overrides", args.task_overrides] if args.task_overrides else []
    return command


def same_command(done: list[str], command: list[str]) -> bool:
    """Whether a finished cell ran ``command``: the same arguments, a path the same whether spelled relative to the
    project or absolute (``../shared/data/glue``, the Makefile's, and the script's absolute default)."""
    def spelled(argument: str) -> str:
        path = ROOT / argument  # an absolute argument stays itself
        try:
            return str(path.resolve()) if path.exists() else argument
        except OSError:  # not a path: a --task_overrides longer than a file name may be
            return argument

    return len(done) == len(command) and all(spelled(a) == spelled(b) for a, b in zip(done, command))


class CellFailed(Exception):
    """A cell's fine-tuning run exited with an error (the message ends with its output's tail)."""


def run_cell(command: list[str], folder: Path) -> dict:
    """One fine-tuning run (all seeds) on one core; its summary and wall-clock seconds. A cell that a run of the
    same command finished (``cell.json``) is read back, not trained again: a long table resumes where it stopped."""
    record = folder / "cell.json"
    if record.is_file() and same_command((done := json.loads(record.read_text()))["command"], command[1:]):
        return {"summary": done["summary"], "seconds": done["seconds"], "reused": True}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise CellFailed(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}")
    summary = json.loads((folder / "glue_results.json").read_text())["summary"]
    cell = {"command": command[1:], "summary": summary, "seconds": time.perf_counter() - start}
    record.write_text(json.dumps(cell, indent=1))
    return cell


def cell_folder(out: Path, method: str, label: str, task: str, learning_rate: str) -> Path:
    """Where a cell trains; a rate other than the method's usual one gets its own folder beside the usual one's."""
    usual = PROBE_LEARNING_RATE if method == "probe" else DEFAULT_LEARNING_RATE
    return out / method / label.replace(" ", "-") / (task if learning_rate == usual else f"{task}-lr{learning_rate}")


def best_of_rates(finished: list[tuple[tuple, dict]]) -> dict[str, dict[str, dict[str, dict]]]:
    """method -> column -> task -> the cell whose rate scored best on dev (mean over seeds), as Turc et al. chose each
    task's fine-tuning rate for the BERT miniatures; a cell with one rate is that rate's."""
    columns: dict[str, dict[str, dict[str, dict]]] = {}
    for (label, _, _, method, task, learning_rate), result in finished:
        best = columns.setdefault(method, {}).setdefault(label, {}).get(task)
        if best is None or task_score(task, result["summary"]) > task_score(task, best["summary"]):
            columns[method][label][task] = {**result, "learning_rate": learning_rate}
    return columns


def table(columns: dict[str, dict[str, dict]], tasks: list[str], seeds: int, show_rates: bool = False) -> str:
    """Task scores (mean over seeds, ± the spread of the task's first metric) per column, then the average; with
    ``show_rates``, each cell's chosen learning rate in brackets."""
    names = list(columns)
    lines = [f"| task (dev, {seeds} seeds) | " + " | ".join(names) + " | BERT-Mini (test, Turc et al.) |",
             "|---|" + "---|" * (len(names) + 1)]
    for task in tasks:
        cells = []
        for name in names:
            summary = columns[name][task]["summary"]
            spread = 100 * next(iter(summary.values()))["std"]
            rate = f" ({columns[name][task]['learning_rate']})" if show_rates else ""
            cells.append(f"{task_score(task, summary):.1f} ± {spread:.1f}{rate}")
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {BERT_MINI[task]:.1f} |")
    averages = [average_score({t: task_score(t, columns[n][t]["summary"]) for t in tasks})["average"] for n in names]
    anchor = sum(BERT_MINI[t] for t in tasks) / len(tasks)
    lines.append("| average | " + " | ".join(f"**{a:.1f}**" for a in averages) + f" | {anchor:.1f} |")
    if "random init" not in columns:
        return "\n".join(lines) + "\n"
    lines.append("")
    random = {t: task_score(t, columns["random init"][t]["summary"]) for t in tasks}
    for name, average in zip(names, averages):
        if name != "random init":  # the yardstick: above random init on every task, and by how much
            gains = ", ".join(f"{t} {task_score(t, columns[name][t]['summary']) - random[t]:+.1f}" for t in tasks)
            lines.append(f"{name} over random init: {gains}; average {average - averages[-1]:+.1f}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", nargs="+", required=True, help="one or more pretrained folders")
    parser.add_argument("--glue_dir", default=str(ROOT.parent / "shared" / "data" / "glue"))
    parser.add_argument("--output_dir", default=str(ROOT / "outputs" / "bench_glue"))
    parser.add_argument("--seeds", nargs="+", default=["1", "2", "3"])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--sst2_train_samples", type=int, default=SST2_TRAIN_SAMPLES)
    parser.add_argument("--max_train_samples", type=int, default=None, help="every task's (a smoke run's)")
    parser.add_argument("--task_overrides", default=TASK_OVERRIDES,
                        help="JSON over glue.yaml's per-task arguments (default: STS-B 3 epochs)")
    parser.add_argument("--learning_rates", nargs="+", default=LEARNING_RATES,
                        help="full fine-tuning's rates (Turc et al.'s grid: 1e-4 5e-5 3e-5); each cell reports its "
                             "best on dev, for every column alike")
    parser.add_argument("--probe_learning_rates", nargs="+", default=PROBE_LEARNING_RATES,
                        help="the linear probe's rates, chosen per cell the same way")
    parser.add_argument("--jobs", type=int, default=2, help="cells at once, one core each")
    parser.add_argument("--random_from", default=None,
                        help="the random-init column's architecture and tokenizer (default: the first checkpoint)")
    parser.add_argument("--inits", nargs="+", default=["pretrained", "random"], choices=["pretrained", "random"],
                        help="the columns to train now (cells finished earlier are read back either way)")
    args = parser.parse_args()

    out = Path(args.output_dir)
    # The random-init column is the first checkpoint's architecture, drawn afresh (--from_scratch).
    inits = [(Path(c).name, c, False) for c in args.checkpoint] if "pretrained" in args.inits else []
    inits += [("random init", args.random_from or args.checkpoint[0], True)] if "random" in args.inits else []
    rates = {"full": args.learning_rates, "probe": args.probe_learning_rates}
    cells = [(label, checkpoint, random_init, method, task, rate) for label, checkpoint, random_init in inits
             for method in args.methods for task in args.tasks for rate in rates[method]]
    cells.sort(key=lambda cell: ORDER[cell[4]])
    start = time.perf_counter()

    def run(cell):
        label, checkpoint, random_init, method, task, rate = cell
        folder = cell_folder(out, method, label, task, rate)
        try:
            result = run_cell(cell_command(checkpoint, task, method, rate, random_init, folder, args), folder)
        except CellFailed as failure:  # the other cells go on: an hour's table is not lost to one cell
            print(f"{method} / {label} / {task} / lr {rate}: FAILED, {failure}", flush=True)
            return cell, None
        score = task_score(task, result["summary"])
        print(f"{method} / {label} / {task} / lr {rate}: {score:.1f} in {result['seconds']:.0f} s", flush=True)
        return cell, result

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        finished = list(pool.map(run, cells))
    failed = [cell for cell, result in finished if result is None]
    if failed:
        raise SystemExit(f"{len(failed)} of {len(cells)} cells failed (their output is above); the others are done: "
                         "the same command again reads them back and trains only the failed ones")
    columns = best_of_rates(finished)

    sections = [f"GLUE dev from {', '.join(args.checkpoint)} and from random initialization of "
                f"{args.random_from or args.checkpoint[0]}'s architecture; SST-2 trained on {args.sst2_train_samples:,} examples; "
                f"{sum(r['seconds'] for _, r in finished) / 60:.0f} minutes of fine-tuning summed over the cells "
                f"({sum('reused' in r for _, r in finished)} of {len(finished)} cells read back from an earlier run), "
                f"{time.perf_counter() - start:.0f} s wall-clock now with {args.jobs} jobs."]
    for method in args.methods:
        grid = len(rates[method]) > 1
        name = {"full": "Full fine-tuning", "probe": "Linear probe, frozen encoder"}[method]
        chosen = ": each cell's best on dev, in brackets" if grid else ""
        title = f"{name} (lr {' '.join(rates[method])}{chosen})"
        sections.append(f"{title}:\n\n{table(columns[method], args.tasks, len(args.seeds), show_rates=grid)}")
    report = "\n\n".join(sections)
    print(report)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(report)
    (out / "results.json").write_text(json.dumps(
        {method: {label: {task: r for task, r in tasks.items()} for label, tasks in by_label.items()}
         for method, by_label in columns.items()}, indent=2))


if __name__ == "__main__":
    main()

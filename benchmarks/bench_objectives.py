"""The objectives side by side: tokens/s of each next to masked LM's, and one quality figure for the new ones at the
same wall-clock time on this machine.

- **Throughput**: every objective through `recipes/pretrain_bert.py` on the same Wikipedia documents, the same model
  size (4 layers x 256, BERT for the encoder objectives, ELECTRA's discriminator of that size, Llama for the decoder
  ones), batch 64 x 128 tokens, bf16, one core; tokens/s (non-padding) between the 4th and the last logged step, so
  start-up and the first steps are left out.
- **SOP and SBO against MLM only**: `--objective mlm` (token and span masking), `mlm_sop` and `mlm_sbo` on BERT 4 x
  256 with the `budget` preset's other settings (30 % masking, sparse prediction, bf16, decayed to 0 when the time
  is up) but lr 1e-3, each for the same number of minutes on one core; then the validation MLM loss and accuracy on the
  same held-out rows (masked once at 15 %, as `bench_quality.py` makes them) and MRPC dev from each checkpoint over
  seeds.
- Causal LM against run_clm.py's way is `bench_clm.py`'s (`make bench-clm`).

Two runs at a time, one core each: SOP beside MLM; SBO beside MLM with the same span masking (what the boundary
objective adds beyond its masking); the throughput runs in pairs; MRPC in pairs.

    python benchmarks/bench_objectives.py --train_file ../shared/data/wikipedia --minutes 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality  # noqa: E402  (the shared data: documents, the 16k tokenizer, the masked validation rows)

ROOT = bench_quality.ROOT
SEQ = bench_quality.SEQ
# bf16 as every side here trains (the preset's own `bf16: auto` would pick fp32 on a CPU without AMX).
BUDGET = ["--config", str(bench_quality.BUDGET), "--bf16", "true"]
# Post-LN BERT at the budget's lr 2e-3 sat at the unigram solution (measured: all four masked-LM sides ended at the
# same 5.2 % accuracy), as the budget preset warns: 1e-3, the rate plain HF's BERT learns at in bench_quality.py.
BERT = ["--model_type", "bert", "--intermediate_size", "1024", "--learning_rate", "1e-3"]
LLAMA = ["--model_type", "llama", "--intermediate_size", "704"]  # SwiGLU's three matrices: about BERT's 1,024
# Each objective as `recipes/pretrain_bert.py` flags on top of the budget preset. Rows of sentence pairs (NSP, SOP)
# and single sentences (contrastive) are not packed documents, and prefix LM draws one prefix per packed row.
OBJECTIVES = {
    "mlm": [*BERT, "--objective", "mlm"],
    "mlm_nsp": [*BERT, "--objective", "mlm_nsp", "--isolate_documents", "false"],
    "mlm_sop": [*BERT, "--objective", "mlm_sop", "--isolate_documents", "false"],
    "mlm_sbo": [*BERT, "--objective", "mlm_sbo"],
    "electra": ["--model_type", "electra", "--intermediate_size", "1024", "--objective", "electra"],
    "clm": [*LLAMA, "--objective", "clm"],
    "prefix_lm": [*LLAMA, "--objective", "prefix_lm", "--isolate_documents", "false"],
    "contrastive": [*BERT, "--objective", "contrastive", "--isolate_documents", "false"],
    # MLM with SpanBERT's span masking and no SBO: what the boundary objective adds, apart from the masking.
    "mlm_span": [*BERT, "--objective", "mlm", "--masking_unit", "span"],
}
THROUGHPUT = ("mlm", "mlm_nsp", "mlm_sop", "mlm_sbo", "electra", "clm", "prefix_lm", "contrastive")
QUALITY = ("mlm", "mlm_span", "mlm_sop", "mlm_sbo")


def one_core() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1"}


def recipe(work: Path, objective: str, out: Path, args: argparse.Namespace, *flags: str) -> list[str]:
    return [sys.executable, str(ROOT / "recipes" / "pretrain_bert.py"), *BUDGET, *OBJECTIVES[objective],
            "--train_file", args.train_file, "--tokenizer_name", str(work / "tokenizer"), "--eval_strategy", "no",
            "--save_strategy", "no", "--output_dir", str(out), "--overwrite_output_dir", *flags]


def start(command: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=one_core(), stdout=open(log, "w"), stderr=subprocess.STDOUT)


def wait(processes: dict[str, subprocess.Popen], work: Path) -> None:
    for name, process in processes.items():
        if process.wait() != 0:
            sys.exit(f"{name} failed: see {work / (name + '.log')}")


# --- throughput ------------------------------------------------------------------------------------------------------


def throughput(work: Path, args: argparse.Namespace) -> dict:
    """tokens/s of each objective on one core, two objectives at a time (so each runs beside another run, as the
    quality runs do)."""
    for pair in zip(THROUGHPUT[::2], THROUGHPUT[1::2]):
        wait({f"throughput-{objective}": start(
            recipe(work, objective, work / "throughput" / objective, args, "--max_train_documents", "400",
                   "--max_steps", str(args.throughput_steps), "--logging_steps", "4", "--max_train_minutes", "60"),
            work / f"throughput-{objective}.log") for objective in pair}, work)
    results = {}
    for objective in THROUGHPUT:
        out = work / "throughput" / objective
        history = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
        first, last = history[0], history[-1]
        tokens = last["num_input_tokens_seen"] - first["num_input_tokens_seen"]
        seconds = float(last["train_runtime"]) - float(first["train_runtime"])
        results[objective] = {"tokens_per_second": tokens / seconds,
                              "tokens_per_step": tokens / (last["step"] - first["step"]),
                              "seconds_per_step": seconds / (last["step"] - first["step"])}
        print(objective, results[objective], flush=True)
    return results


# --- scoring -----------------------------------------------------------------------------------------------------------


def masked_lm_scores(folder: Path, work: Path) -> tuple[float, float]:
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(str(folder))
    return bench_quality.evaluate(model, bench_quality.validation_batches(work), bf16=True)


def finetune(checkpoint: Path, out: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, Path]:
    command = [sys.executable, str(ROOT / "recipes" / "finetune_glue.py"), "--config",
               str(ROOT / "recipes" / "configs" / "glue.yaml"), "--model_name_or_path", str(checkpoint),
               "--task_name", "mrpc", "--glue_dir", args.glue_dir, "--output_dir", str(out), "--seeds",
               *map(str, args.seeds), "--bf16"]
    return subprocess.Popen(command, env=one_core(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out


def trained(folder: Path) -> dict:
    state = json.loads((folder / "trainer_state.json").read_text())
    final = next(h for h in reversed(state["log_history"]) if "train_runtime" in h)
    return {"steps": state["global_step"], "tokens": int(state["num_input_tokens_seen"]),
            "train_seconds": float(final["train_runtime"])}


# --- the comparison ----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_file", default=str(ROOT.parent / "shared" / "data" / "wikipedia"))
    parser.add_argument("--glue_dir", default=str(ROOT.parent / "shared" / "data" / "glue"))
    parser.add_argument("--output_dir", default=str(ROOT / "outputs" / "bench_objectives"))
    parser.add_argument("--minutes", type=float, default=8.0, help="training minutes of each quality run")
    parser.add_argument("--throughput_steps", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--vocab_size", type=int, default=16384)
    parser.add_argument("--max_documents", type=int, default=None, help="a smaller corpus (quick runs)")
    args = parser.parse_args()
    work = Path(args.output_dir)
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "validation").is_dir():
        bench_quality.prepare(work, args)
    timed = ["--max_train_minutes", str(args.minutes), "--logging_steps", "50"]
    if args.max_documents:
        timed += ["--max_train_documents", str(args.max_documents)]
    results_path = work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}

    def save():
        results_path.write_text(json.dumps(results, indent=1))

    if "mlm_sop" not in results:  # SOP beside MLM only, one core each
        wait({name: start(recipe(work, name, work / name, args, *timed), work / f"{name}.log")
              for name in ("mlm", "mlm_sop")}, work)
        results.update({name: trained(work / name) for name in ("mlm", "mlm_sop")})
        save()
    if "mlm_sbo" not in results:  # SBO beside MLM with the same span masking
        wait({name: start(recipe(work, name, work / name, args, *timed), work / f"{name}.log")
              for name in ("mlm_span", "mlm_sbo")}, work)
        results.update({name: trained(work / name) for name in ("mlm_span", "mlm_sbo")})
        save()
    if "throughput" not in results:
        results["throughput"] = throughput(work, args)
        save()

    for name in QUALITY:
        if "validation_loss" not in results[name]:
            loss, accuracy = masked_lm_scores(work / name, work)
            results[name].update(validation_loss=loss, validation_accuracy=accuracy)
            save()
    for pair in zip(QUALITY[::2], QUALITY[1::2]):  # two fine-tunings at a time, one core each
        pending = [name for name in pair if "mrpc" not in results[name]]
        outputs = {name: finetune(work / name, work / f"mrpc-{name}", args) for name in pending}
        for name, (process, out) in outputs.items():
            if process.wait() != 0:
                sys.exit(f"MRPC from {name} failed: run {' '.join(process.args)}")
            results[name]["mrpc"] = json.loads((out / "glue_results.json").read_text())["summary"]
        save()
    report(work, results, args)


def report(work: Path, results: dict, args: argparse.Namespace) -> None:
    speed = results["throughput"]
    base = speed["mlm"]["tokens_per_second"]
    lines = ["| objective | tokens/s (one core) | vs `mlm` | tokens per step (batch 64) |", "|---|---|---|---|"]
    for name, r in speed.items():
        lines.append(f"| `{name}` | {r['tokens_per_second']:,.0f} | {r['tokens_per_second'] / base:.2f}x | "
                     f"{r['tokens_per_step']:,.0f} |")
    lines += ["", f"| {args.minutes:g} minutes each, one core | steps | tokens | validation MLM loss (15 %) | "
              f"accuracy | MRPC accuracy ({len(args.seeds)} seeds) | MRPC F1 |", "|---|---|---|---|---|---|---|"]
    for name in QUALITY:
        r = results[name]
        acc, f1 = r["mrpc"]["validation_accuracy"], r["mrpc"]["validation_f1"]
        label = "`mlm`, span masking" if name == "mlm_span" else f"`{name}`"
        lines.append(f"| {label} | {r['steps']:,} | {r['tokens'] / 1e6:.2f} M | {r['validation_loss']:.3f} | "
                     f"{100 * r['validation_accuracy']:.1f} % | {100 * acc['mean']:.1f} ± {100 * acc['std']:.1f} | "
                     f"{100 * f1['mean']:.1f} ± {100 * f1['std']:.1f} |")
    (work / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

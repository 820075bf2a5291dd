"""Three ways to adapt an encoder to MRPC, from a pretrained checkpoint and from random initialization of the same
architecture: full fine-tuning, a linear probe (frozen encoder, trained head) and LoRA, over the same seeds, with
the wall-clock time of each on this machine.

    python benchmarks/bench_adaptation.py --checkpoint outputs/bench_quality/ours/model --glue_dir ../shared/data/glue

Each run is ``recipes/finetune_glue.py`` with ``recipes/configs/glue.yaml`` (3 epochs, batch 32); full fine-tuning
at its learning rate (1e-4), the probe and LoRA at 1e-3 (frozen weights take a larger step). Prints a markdown
table and writes it, with the numbers, to --output_dir.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METHODS = {"full": ["--learning_rate", "1e-4"], "linear_probe": ["--learning_rate", "1e-3"],
           "lora": ["--learning_rate", "1e-3"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--glue_dir", default=str(ROOT.parent / "shared" / "data" / "glue"))
    parser.add_argument("--output_dir", default=str(ROOT / "outputs" / "bench_adaptation"))
    parser.add_argument("--seeds", nargs="+", default=["1", "2", "3"])
    parser.add_argument("--max_train_samples", default=None, help="keep a smoke run short")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--inits", nargs="+", default=["pretrained", "random"], choices=["pretrained", "random"])
    args = parser.parse_args()

    out = Path(args.output_dir)
    rows = {}
    for method in args.methods:
        flags = METHODS[method]
        for init in ("pretrained", "random init"):
            if init.split()[0] not in args.inits:
                continue
            folder = out / f"{method}-{init.replace(' ', '-')}"
            command = [sys.executable, "recipes/finetune_glue.py", "--config", "recipes/configs/glue.yaml",
                       "--model_name_or_path", args.checkpoint, "--task_name", "mrpc", "--glue_dir", args.glue_dir,
                       "--output_dir", str(folder), "--seeds", *args.seeds, "--adaptation", method, "--bf16", *flags]
            command += ["--from_scratch"] if init == "random init" else []
            command += ["--max_train_samples", args.max_train_samples] if args.max_train_samples else []
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds = (time.perf_counter() - start) / len(args.seeds)
            summary = json.loads((folder / "glue_results.json").read_text())["summary"]
            rows[(method, init)] = {"summary": summary, "seconds_per_seed": seconds}
            print(f"{method} / {init}: {summary} in {seconds:.0f} s per seed", flush=True)

    lines = [f"MRPC dev, {len(args.seeds)} seeds, from {args.checkpoint}; wall-clock per seed (train + eval + save).",
             "", "| method | initialization | accuracy | F1 | seconds per seed |", "|---|---|---|---|---|"]
    for (method, init), row in rows.items():
        acc, f1 = row["summary"]["validation_accuracy"], row["summary"]["validation_f1"]
        lines.append(f"| {method} | {init} | {100 * acc['mean']:.1f} ± {100 * acc['std']:.1f} | "
                     f"{100 * f1['mean']:.1f} ± {100 * f1['std']:.1f} | {row['seconds_per_seed']:.0f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(table)
    (out / "results.json").write_text(json.dumps({f"{m} / {i}": r for (m, i), r in rows.items()}, indent=2))


if __name__ == "__main__":
    main()

"""Causal LM per compute: the `clm_budget` preset against run_clm.py's way, trained side by side for the same
wall-clock time on this machine, scored by validation perplexity at several times.

Both sides see the same documents (the by-document validation split of ``bench_quality.py``'s data step) and the same
16k WordPiece tokenizer, and are scored on the same held-out documents, cut into windows of at most 128 tokens that
start at a document's beginning or continue it (no window spans two documents; 512 of them, evenly spaced):
perplexity over every next-token prediction.

- ours: `recipes/configs/clm_budget.yaml` (or the preset --config names, with --ours_args on top), built with the
        recipe's own pieces (objective, data step, model, trainer), its schedule keyed to the last evaluation's
        minutes;
- hf:   run_clm.py's way: each document tokenized whole, `group_texts` into 128-token blocks, labels = inputs,
        `default_data_collator`, a `LlamaForCausalLM` as wide and deep as ours with transformers' defaults otherwise,
        AdamW at lr 1e-3 (the rate the earlier comparison gave it), batch 32, linear decay over the steps a short probe
        says the time holds (+10 %), the same precision as ours.

Each side runs in its own process on one core, both at once, and is evaluated at each of --evals minutes of training
(evaluation time is not counted). Then the cost of ``--isolate_documents``: tokens/s of the preset with and without
it over --throughput_steps steps, the two again side by side on one core each.

    make bench-clm                # python benchmarks/bench_clm.py --train_file ../shared/data/wikipedia
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality  # noqa: E402  (the shared data step, the timed evaluations and the step probe)
from measure import one_core_env  # noqa: E402

ROOT = bench_quality.ROOT
SEQ = bench_quality.SEQ
CLM_BUDGET = ROOT / "recipes" / "configs" / "clm_budget.yaml"


# --- scoring -----------------------------------------------------------------------------------------------------------


def causal_windows(work: Path, limit: int = 512, batch_size: int = 32) -> list[torch.Tensor]:
    """Held-out documents cut into windows of at most SEQ tokens, none spanning two documents, as batches of one
    length (no padding): ``limit`` of them, evenly spaced over the documents, so that an evaluation takes seconds
    (ours' time budget counts them)."""
    from datasets import load_from_disk

    from hf_pretrain import load_tokenizer

    tokenizer = load_tokenizer(str(work / "tokenizer"))
    windows = []
    for text in load_from_disk(str(work / "documents"))["validation"]["text"]:
        ids = tokenizer(text)["input_ids"]
        windows += [ids[i : i + SEQ] for i in range(0, len(ids) - 1, SEQ) if len(ids[i : i + SEQ]) > 1]
    windows = sorted(windows[:: max(1, len(windows) // limit)][:limit], key=len)
    batches, current = [], []
    for window in windows:
        if current and (len(window) != len(current[0]) or len(current) == batch_size):
            batches.append(torch.tensor(current))
            current = []
        current.append(window)
    return batches + [torch.tensor(current)]


@torch.no_grad()
def perplexity(model, batches: list[torch.Tensor], bf16: bool) -> float:
    was_training = model.training
    model.eval()
    nll = count = 0.0
    for input_ids in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=input_ids).logits.float()
        nll += torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), input_ids[:, 1:].flatten(),
                                                 reduction="sum").item()
        count += input_ids[:, 1:].numel()
    model.train(was_training)
    return math.exp(nll / count)


# --- the two sides -----------------------------------------------------------------------------------------------------


def build_hf(work: Path, out: Path, args: argparse.Namespace):
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, default_data_collator, set_seed

    from hf_pretrain import load_tokenizer

    tokenizer = load_tokenizer(str(work / "tokenizer"))
    blocks = bench_quality.plain_hf_blocks(work, tokenizer, labels=True, return_token_type_ids=False)
    preset = bench_quality.parse_budget(args.config)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=preset["hidden_size"],
                         num_hidden_layers=preset["num_hidden_layers"],
                         num_attention_heads=preset["num_attention_heads"],
                         intermediate_size=preset["intermediate_size"], max_position_embeddings=SEQ,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                         eos_token_id=tokenizer.sep_token_id)
    set_seed(0)
    steps = int(1.1 * bench_quality.probe_steps(LlamaForCausalLM(config), blocks, default_data_collator,
                                                max(args.evals) * 60, args.bf16))
    set_seed(0)
    model = LlamaForCausalLM(config)
    training_args = bench_quality.plain_hf_arguments(out, steps, args.bf16)
    trainer = Trainer(model=model, args=training_args, train_dataset=blocks, data_collator=default_data_collator,
                      processing_class=tokenizer)
    return trainer, model, steps


def run_side(side: str, work: Path, args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    windows = causal_windows(work)
    record: list[dict] = []
    callback = bench_quality.timed_evaluation(
        args.evals, lambda model: {"perplexity": perplexity(model, windows, args.bf16)}, record)
    out = work / side
    scheduled = None
    if side == "ours":
        trainer, model, _, _ = bench_quality.build_ours(work, out, args)
    else:
        trainer, model, scheduled = build_hf(work, out, args)
    trainer.add_callback(callback)
    trainer.train()
    if callback.pending:  # ours' time budget counts the evaluations too: it can end before the last mark
        record.append({"minutes": round(callback.spent / 60, 2), "train_seconds": callback.spent,
                       "step": trainer.state.global_step, "tokens": int(trainer.state.num_input_tokens_seen),
                       "perplexity": perplexity(model, windows, args.bf16), "budget_end": True})
    return {"side": side, "curve": record, "tokens_per_second": record[-1]["tokens"] / record[-1]["train_seconds"],
            "batch_size": trainer.args.per_device_train_batch_size, "learning_rate": trainer.args.learning_rate,
            "scheduled_steps": scheduled, "parameters": model.num_parameters(),
            "precision": "bf16" if args.bf16 else "fp32",
            "config": " ".join([Path(args.config).name, args.ours_args]).strip()}


def isolation_command(work: Path, args: argparse.Namespace, isolate: bool) -> list[str]:
    """The preset through the recipe for --throughput_steps steps, with or without document isolation."""
    return [sys.executable, str(ROOT / "recipes" / "pretrain_bert.py"), "--config", args.config,
            "--train_file", args.train_file, "--tokenizer_name", str(work / "tokenizer"), "--max_train_documents",
            "2000", "--max_steps", str(args.throughput_steps), "--logging_steps", "4", "--eval_strategy", "no",
            "--save_strategy", "no", "--bf16", str(args.bf16).lower(), "--isolate_documents", str(isolate).lower(),
            "--output_dir", str(work / f"isolate-{isolate}"), "--overwrite_output_dir"]


def tokens_per_second(out: Path) -> float:
    """Non-padding tokens/s between the first and the last logged step (start-up and the first steps left out)."""
    history = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    first, last = history[0], history[-1]
    return (last["num_input_tokens_seen"] - first["num_input_tokens_seen"]) / (
        float(last["train_runtime"]) - float(first["train_runtime"]))


def run_all(work: Path, runs: dict[str, list[str]]) -> None:
    """The commands at once, one core each; a failure names its log."""
    processes = {name: subprocess.Popen(command, cwd=ROOT, stdout=open(work / f"{name}.log", "w"),
                                        stderr=subprocess.STDOUT, env=one_core_env())
                 for name, command in runs.items()}
    for name, process in processes.items():
        if process.wait() != 0:
            sys.exit(f"{name} failed: see {work / f'{name}.log'}")


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_file", default=str(ROOT.parent / "shared" / "data" / "wikipedia"))
    parser.add_argument("--output_dir", default=str(ROOT / "outputs" / "bench_clm"))
    parser.add_argument("--config", default=str(CLM_BUDGET), help="ours: the preset (default: clm_budget.yaml)")
    parser.add_argument("--evals", type=float, nargs="+", default=[4, 8, 15, 30], help="minutes")
    parser.add_argument("--throughput_steps", type=int, default=40, help="0: no isolation figure")
    parser.add_argument("--vocab_size", type=int, default=16384)
    parser.add_argument("--max_documents", type=int, default=None, help="a smaller corpus (quick runs)")
    parser.add_argument("--ours_args", default="", help='flags added to ours\' preset, e.g. "--use_muon true"')
    parser.add_argument("--side", choices=["ours", "hf"], help=argparse.SUPPRESS)
    parser.add_argument("--bf16", type=lambda v: v.lower() == "true", default=None,
                        help="true or false for both sides (default: the preset's auto, decided here)")
    return parser


def main() -> None:
    args = argument_parser().parse_args()
    work = Path(args.output_dir)
    if args.side:
        result = run_side(args.side, work, args)
        (work / f"{args.side}.json").write_text(json.dumps(result, indent=1))
        return

    work.mkdir(parents=True, exist_ok=True)
    bench_quality.decide_precision(args)
    if not (work / "tokenizer").is_dir():
        bench_quality.prepare(work, args)
    child = [sys.executable, __file__, "--output_dir", str(work), "--train_file", args.train_file,
             "--config", args.config, "--evals", *map(str, args.evals), "--bf16", str(args.bf16).lower(),
             "--ours_args", args.ours_args]
    run_all(work, {side: [*child, "--side", side] for side in ("ours", "hf")})
    results = {side: json.loads((work / f"{side}.json").read_text()) for side in ("ours", "hf")}
    if args.throughput_steps:
        run_all(work, {f"isolate-{isolate}": isolation_command(work, args, isolate)
                              for isolate in (False, True)})
        results["isolation"] = {str(isolate).lower(): tokens_per_second(work / f"isolate-{isolate}")
                                for isolate in (False, True)}
    report(work, results)


def report(work: Path, results: dict) -> None:
    ours, hf = results["ours"], results["hf"]
    lines = [f"| training minutes | ours ({ours['config']}) perplexity | plain HF (run_clm.py's way) perplexity | "
             "plain HF / ours |", "|---|---|---|---|"]
    for a, b in zip(ours["curve"], hf["curve"]):
        when = f"{a['minutes']:g}" if a["minutes"] == b["minutes"] else f"{a['minutes']:g} / {b['minutes']:g}"
        lines.append(f"| {when} | {a['perplexity']:.1f} | {b['perplexity']:.1f} | "
                     f"{b['perplexity'] / a['perplexity']:.2f}x |")
    lines.append("")
    for name, side in (("ours", ours), ("plain HF", hf)):
        end = side["curve"][-1]
        scheduled = f", linear decay over {side['scheduled_steps']:,} scheduled steps" if side["scheduled_steps"] else ""
        lines.append(f"{name}: {end['step']:,} steps of batch {side['batch_size']} at peak lr {side['learning_rate']:g}"
                     f"{scheduled}, {end['tokens'] / 1e6:.2f} M tokens, {side['tokens_per_second']:,.0f} tokens/s "
                     f"in {side['precision']}, {side['parameters']:,} parameters")
    if "isolation" in results:
        free, isolated = results["isolation"]["false"], results["isolation"]["true"]
        lines.append(f"document isolation: {isolated:,.0f} tokens/s with it, {free:,.0f} without "
                     f"({isolated / free:.2f}x)")
    (work / "results.json").write_text(json.dumps(results, indent=1))
    (work / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

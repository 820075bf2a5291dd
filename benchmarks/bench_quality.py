"""Quality per compute: the recommended budget preset against the run_mlm.py way, trained side by side for the same
wall-clock time on this machine, then the GLUE table (MRPC, SST-2, STS-B; ``bench_glue.py``) from our checkpoint and
from random initialization.

Both sides see the same documents (a by-document validation split held out of the corpus), the same 16k WordPiece
tokenizer trained once, and the same validation rows: packed 128-token rows masked once at 15 % from a fixed seed.

- ours: `recipes/configs/budget_match.yaml`, the budget preset with the best GLUE average (docs/results.md: +22 points
        over random init where the MLM-only `budget.yaml` adds 2), or the preset --config names; built with the
        recipe's own pieces (objective, data step, model, trainer), saved as the recipe saves it;
- hf:   run_mlm.py's way: each document tokenized whole, `group_texts` into 128-token blocks,
        `DataCollatorForLanguageModeling` (15 %), a `BertForMaskedLM` as wide and deep as ours, AdamW at lr 1e-3,
        batch 32, linear decay over the steps it reaches in the budget (measured on a short probe, plus 10 %),
        the same precision as ours (the preset's `bf16: auto`, decided once on one core, for both sides and the
        fine-tuning). With ``--hf_model_type modernbert`` the same way trains the preset's own architecture
        instead (as ``run_mlm.py --model_type modernbert --config_overrides`` builds it: its width, depth, heads
        and MLP, transformers' defaults for the rest), so the table shows what the recipe adds beyond the
        architecture transformers ships.

Each side runs in its own process on one core (`torch.set_num_threads(1)`, one inductor compile worker), both at
once, and is evaluated on the validation rows at 5, 10, 20 and 30 minutes of training (evaluation time is not
counted). Each also measures this machine's matrix-multiply peak on its core (large `torch.matmul`s), in bf16 and
in fp32, and, after training, the peak of its own linear layers' shapes (one training batch's, each product and its
two backward ones multiplied alone: the limit a 256-wide model can approach), and reports its model-FLOPs
utilization against both, in the precision it trains in.
Prints the table, the time-to-loss ratio (how much longer plain HF needs to reach our 30-minute loss, extrapolated
from its curve when it does not get there: a straight line in log-time over its last evaluations, up to 10x its
measured time, beyond which the bound and the slope are printed), the GLUE table (bench_glue.py's protocol: our
checkpoint and random init of its architecture, fine-tuned and probed over seeds, each cell at its best of two
rates), and writes `results.json`, `results.md` and `curves.png` to --output_dir. With --prepared_dataset both sides
read a `hf-pretrain prepare` folder's documents and tokenizer instead of --train_file's.

    make bench-quality            # python benchmarks/bench_quality.py --train_file ../shared/data/wikipedia
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from measure import gemm_rate, linear_shapes, one_core_env  # benchmarks/ is the script's folder, hence on sys.path

ROOT = Path(__file__).resolve().parent.parent
BUDGET = ROOT / "recipes" / "configs" / "budget.yaml"  # the MLM-only preset (bench_objectives varies its objective)
# The default of --config: the preset to recommend, chosen by the GLUE table (issue 31's item 2).
RECOMMENDED = ROOT / "recipes" / "configs" / "budget_match.yaml"
SEQ = 128


# --- data, shared by both sides --------------------------------------------------------------------------------------


def prepare(work: Path, args: argparse.Namespace) -> None:
    """The documents (train and a by-document validation split), the tokenizer and the masked validation rows: from
    --train_file (a tokenizer trained here), or a ``hf-pretrain prepare`` folder's documents and tokenizer as they are,
    so that a checkpoint compares with others trained on that folder."""
    from datasets import DatasetDict, load_from_disk

    from hf_pretrain import load_corpus, load_tokenizer, train_wordpiece_tokenizer
    from hf_pretrain.data.sequences import pack_sequences, tokenize_documents
    from hf_pretrain.objectives.masking import MaskingConfig, mask_dataset
    from hf_pretrain.rng import Stream

    if args.prepared_dataset:
        prepared = load_from_disk(str(Path(args.prepared_dataset) / "documents"))
        documents = {split: prepared[split] for split in ("train", "validation")}
        tokenizer = load_tokenizer(str(Path(args.prepared_dataset) / "tokenizer"))
    else:
        documents = load_corpus([args.train_file], validation_split_percentage=1.0, seed=0,
                                max_train_documents=args.max_documents)
        tokenizer = train_wordpiece_tokenizer(documents["train"]["text"], vocab_size=args.vocab_size,
                                              model_max_length=SEQ)
    DatasetDict(documents).save_to_disk(str(work / "documents"))
    tokenizer.save_pretrained(str(work / "tokenizer"))
    validation = pack_sequences(tokenize_documents(documents["validation"], tokenizer), tokenizer.cls_token_id,
                                tokenizer.sep_token_id, SEQ)
    masked = mask_dataset(validation, tokenizer, MaskingConfig(mlm_probability=0.15), seed=0,
                          stream=Stream.VALIDATION_MASKS)
    masked.save_to_disk(str(work / "validation"))


def validation_batches(work: Path, batch_size: int = 64) -> list[dict[str, torch.Tensor]]:
    from datasets import load_from_disk

    rows = load_from_disk(str(work / "validation")).with_format("torch")
    return [{"input_ids": rows[i : i + batch_size]["input_ids"], "labels": rows[i : i + batch_size]["labels"]}
            for i in range(0, len(rows), batch_size)]


@torch.no_grad()
def evaluate(model, batches, bf16: bool) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over the masked validation tokens (full or sparse logits alike)."""
    was_training = model.training
    model.eval()
    nll = correct = count = 0.0
    for batch in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=batch["input_ids"], labels=batch["labels"]).logits.float()
        labels = batch["labels"]
        selected = labels != -100
        if logits.dim() == 3:
            logits = logits[selected]
        targets = labels[selected]
        nll += torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
        correct += (logits.argmax(-1) == targets).sum().item()
        count += len(targets)
    model.train(was_training)
    return nll / count, correct / count


def flops_per_token(config, predicted_fraction: float) -> float:
    """Training FLOPs per token the model executes: 3 x (2 x the layers' weights + attention over the sequence +
    the MLM head at the positions it runs on: all of them, or the masked fraction with sparse prediction)."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    glu = 2 if config.model_type == "modernbert" else 1  # ModernBERT's GeGLU input projection is twice as wide
    per_layer = 4 * hidden * hidden + (glu + 1) * hidden * config.intermediate_size
    head = predicted_fraction * (hidden * hidden + hidden * config.vocab_size)
    return 3 * (2 * (layers * per_layer + head) + 4 * layers * hidden * SEQ)


# --- one side ----------------------------------------------------------------------------------------------------


def timed_evaluation(marks: list[float], score, record: list):
    """A callback that scores the model (``score(model)``: a dict of figures) at each of ``marks`` (minutes of
    training, evaluation excluded) and stops after the last one."""
    from transformers import TrainerCallback

    class TimedEvaluation(TrainerCallback):
        def __init__(self):
            self.spent, self.resumed_at, self.pending = 0.0, None, list(marks)

        def on_step_begin(self, args, state, control, **kwargs):
            if self.resumed_at is None:
                self.resumed_at = time.perf_counter()

        def on_step_end(self, args, state, control, model=None, **kwargs):
            now = time.perf_counter()
            self.spent += now - self.resumed_at
            if self.pending and self.spent >= self.pending[0] * 60:
                record.append({"minutes": self.pending.pop(0), "train_seconds": self.spent, "step": state.global_step,
                               "tokens": int(state.num_input_tokens_seen), **score(model)})
                print(f"{record[-1]}", flush=True)
                if not self.pending:
                    control.should_training_stop = True
            self.resumed_at = time.perf_counter()

    return TimedEvaluation()


def run_side(side: str, work: Path, args: argparse.Namespace) -> dict:
    from hf_pretrain.runtime.precision import matmul_rate

    torch.set_num_threads(1)
    peaks = {name: matmul_rate(dtype, seconds=3.0) for name, dtype in (("bf16", torch.bfloat16),
                                                                        ("fp32", torch.float32))}
    batches = validation_batches(work)
    record: list[dict] = []
    callback = timed_evaluation(args.evals, lambda model: dict(zip(("loss", "accuracy"),
                                                                   evaluate(model, batches, args.bf16))), record)
    out = work / side
    if side == "ours":
        trainer, model, predicted, save = build_ours(work, out, args)
    else:
        trainer, model, predicted, save = build_hf(work, out, args)
    trainer.add_callback(callback)
    trainer.train()
    if callback.pending:  # ours' time budget counts the evaluations too: it can end before the last mark
        loss, accuracy = evaluate(model, batches, args.bf16)
        record.append({"minutes": round(callback.spent / 60, 2), "train_seconds": callback.spent,
                       "step": trainer.state.global_step, "tokens": int(trainer.state.num_input_tokens_seen),
                       "loss": loss, "accuracy": accuracy, "budget_end": True})
    save(trainer, str(out / "model"))  # ours: the stock class, without an objective's training-only modules
    trainer.processing_class.save_pretrained(str(out / "model"))
    tokens = record[-1]["tokens"]
    seconds = record[-1]["train_seconds"]
    achieved = flops_per_token(model.config, predicted) * tokens / seconds
    precision = "bf16" if args.bf16 else "fp32"
    # The second peak: this side's own linear layers at the shapes of one of its training batches, multiplied alone.
    batch = next(iter(trainer.get_train_dataloader()))
    shapes = linear_shapes(model, lambda: trainer.compute_loss(model, batch))
    shape_peak = gemm_rate(shapes, torch.bfloat16 if args.bf16 else torch.float32)
    return {"side": side, "curve": record, "tokens_per_second": tokens / seconds, "precision": precision,
            "matmul_peak_tflops": peaks[precision] / 1e12, "matmul_peaks_tflops": {k: v / 1e12 for k, v in peaks.items()},
            "mfu": achieved / peaks[precision], "mfu_bf16_peak": achieved / peaks["bf16"],
            "model_shape_peak_tflops": shape_peak / 1e12, "mfu_model_shape_peak": achieved / shape_peak,
            "parameters": model.num_parameters(), "model_type": model.config.model_type, "config": " ".join([Path(args.config).name, args.ours_args]).strip() if side == "ours" else None}


def build_ours(work: Path, out: Path, args: argparse.Namespace):
    from datasets import DatasetDict, load_from_disk
    from transformers import TrainingArguments, set_seed

    from hf_pretrain import (DataArguments, ModelArguments, PretrainingArguments, load_tokenizer, objective_class,
                             parse_config, tokenize_documents)
    from hf_pretrain.training.arguments import RunArguments
    from hf_pretrain.training.data import build_sequences
    from hf_pretrain.training.inputs import PretrainingData
    from hf_pretrain.training.run import pretraining_trainer, save_model

    model_args, data_args, pretraining, run_args, training_args = parse_config(
        (ModelArguments, DataArguments, PretrainingArguments, RunArguments, TrainingArguments),
        ["--config", args.config, "--output_dir", str(out), "--tokenizer_name", str(work / "tokenizer"),
         "--max_train_minutes", str(max(args.evals)), "--eval_strategy", "no", "--save_strategy", "no",
         "--logging_steps", "50", "--max_steps", "1000000", "--bf16", str(args.bf16).lower(),
         *shlex.split(args.ours_args)],
    )
    objective = objective_class(pretraining.objective)(pretraining, training_args.seed)
    tokenizer = load_tokenizer(str(work / "tokenizer"))
    documents = DatasetDict(train=load_from_disk(str(work / "documents"))["train"])
    tokenized = DatasetDict(train=tokenize_documents(documents["train"], tokenizer))
    sequences = build_sequences(objective, tokenized, tokenizer, max_seq_length=data_args.max_seq_length)
    set_seed(training_args.seed)
    model = objective.build_model(model_args, tokenizer, data_args.max_seq_length)
    prepared = getattr(args, "prepared_dataset", None)  # bench_clm.py builds ours here too, without the flag
    data = PretrainingData(documents, sequences, tokenizer, prepared or args.train_file,
                           "WordPiece from the prepared dataset" if prepared else "shared WordPiece")
    trainer = pretraining_trainer(objective, model, data, training_args, run_args)
    return trainer, model, pretraining.mlm_probability, save_model


def plain_hf_arguments(out: Path, steps: int, bf16: bool):
    """The plain-HF side's ``TrainingArguments``, the same for masked and causal LM: batch 32, AdamW at lr 1e-3, a
    5 % warmup and a linear decay over ``steps``, the precision both sides train in."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=32, learning_rate=1e-3, max_steps=steps,
        lr_scheduler_type="linear", warmup_steps=0.05, weight_decay=0.01, bf16=bf16, use_cpu=True,
        logging_steps=50, save_strategy="no", report_to="none", include_num_input_tokens_seen="non_padding",
        dataloader_pin_memory=False, seed=0,
    )


def plain_hf_config(tokenizer, config: str | Path, model_type: str):
    """The plain-HF side's model config: BERT as wide and deep as the preset with BERT's 4x MLP, or
    (``model_type`` other than bert) that type as ``run_mlm.py --model_type --config_overrides`` builds it from the
    preset's width, depth, heads and MLP, transformers' defaults for everything else. The special-token ids are the
    tokenizer's (a user must override them too: ModernBERT's defaults lie outside a 16k vocabulary)."""
    from transformers import AutoConfig

    budget = parse_budget(config)
    shape = {"hidden_size": budget["hidden_size"], "num_hidden_layers": budget["num_hidden_layers"],
             "num_attention_heads": budget["num_attention_heads"]}
    if model_type == "bert":
        return AutoConfig.for_model("bert", vocab_size=len(tokenizer), intermediate_size=4 * budget["hidden_size"],
                                    pad_token_id=tokenizer.pad_token_id, **shape)
    ids = {"pad_token_id": tokenizer.pad_token_id, "cls_token_id": tokenizer.cls_token_id,
           "sep_token_id": tokenizer.sep_token_id, "bos_token_id": tokenizer.cls_token_id,
           "eos_token_id": tokenizer.sep_token_id}
    return AutoConfig.for_model(model_type, vocab_size=len(tokenizer), intermediate_size=budget["intermediate_size"],
                                **shape, **ids)


def build_hf(work: Path, out: Path, args: argparse.Namespace):
    from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling, Trainer, set_seed

    from hf_pretrain import load_tokenizer

    tokenizer = load_tokenizer(str(work / "tokenizer"))
    blocks = plain_hf_blocks(work, tokenizer, return_special_tokens_mask=True)
    config = plain_hf_config(tokenizer, args.config, args.hf_model_type)
    set_seed(0)
    model = AutoModelForMaskedLM.from_config(config)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    # The schedule's length as a run_mlm.py user would size it: the steps the budget holds at the probed speed,
    # plus 10 % so that a slower stretch never ends training before the last evaluation.
    steps = int(1.1 * probe_steps(model, blocks, collator, max(args.evals) * 60, args.bf16))
    set_seed(0)
    model = AutoModelForMaskedLM.from_config(config)
    training_args = plain_hf_arguments(out, steps, args.bf16)
    trainer = Trainer(model=model, args=training_args, train_dataset=blocks, data_collator=collator,
                      processing_class=tokenizer)
    return trainer, model, 1.0, Trainer.save_model


def plain_hf_blocks(work: Path, tokenizer, labels: bool = False, **tokenizer_kwargs):
    """The training documents as run_mlm.py and run_clm.py make them: each tokenized whole, then `group_texts`
    into SEQ-token blocks (with ``labels``, a copy of the inputs, as run_clm.py's)."""
    from itertools import chain

    from datasets import load_from_disk

    documents = load_from_disk(str(work / "documents"))["train"]
    tokenized = documents.map(lambda b: tokenizer(b["text"], **tokenizer_kwargs), batched=True,
                              remove_columns=documents.column_names)  # a prepared folder's sentences too

    def group_texts(examples):
        concatenated = {k: list(chain(*examples[k])) for k in examples}
        total = len(concatenated["input_ids"]) // SEQ * SEQ
        result = {k: [t[i : i + SEQ] for i in range(0, total, SEQ)] for k, t in concatenated.items()}
        if labels:
            result["labels"] = result["input_ids"].copy()
        return result

    return tokenized.map(group_texts, batched=True)


def probe_steps(model, blocks, collator, seconds: float, bf16: bool) -> int:
    """How many batch-32 steps fit in ``seconds`` (timed over a few steps in the precision the side trains in), so
    the schedule ends with the budget."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    timings = []
    for i in range(6):
        batch = collator([blocks[j] for j in range(32 * i, 32 * (i + 1))])
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        timings.append(time.perf_counter() - start)
    return int(seconds / statistics.median(timings[2:]))


def parse_budget(config: str | Path = BUDGET) -> dict:
    import yaml

    return yaml.safe_load(Path(config).read_text())


# --- the comparison ----------------------------------------------------------------------------------------------


EXTRAPOLATION_LIMIT = 10.0  # times plain HF's measured minutes


def time_to_loss(curve: list[dict], target: float) -> tuple[float, bool]:
    """Minutes at which ``curve`` reaches ``target``: interpolated, or extrapolated on a line in log-time through
    its last two evaluations (True when extrapolated)."""
    for before, after in zip(curve, curve[1:]):
        if after["loss"] <= target < before["loss"]:
            t = (before["loss"] - target) / (before["loss"] - after["loss"])
            start, end = math.log(before["minutes"]), math.log(after["minutes"])
            return math.exp(start + t * (end - start)), False
    if curve[0]["loss"] <= target:
        return curve[0]["minutes"], False
    a, b = curve[-2], curve[-1]
    slope = (b["loss"] - a["loss"]) / (math.log(b["minutes"]) - math.log(a["minutes"]))
    if slope >= 0:
        return math.inf, True
    return math.exp(math.log(b["minutes"]) + (target - b["loss"]) / slope), True


def glue_table(checkpoint: Path, out: Path, args: argparse.Namespace) -> str:
    """``bench_glue.py``'s table of our checkpoint against random init (MRPC, SST-2, STS-B; fine-tuned and probed)."""
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_glue.py"), "--checkpoint", str(checkpoint),
               "--glue_dir", args.glue_dir, "--output_dir", str(out), "--seeds", *map(str, args.seeds)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return (out / "results.md").read_text()


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    preset = results["ours"].get("config") or "budget.yaml"  # results written before the preset was recorded
    hf_model = results["hf"].get("model_type", "bert")  # results written before the choice existed: BERT
    for side, label in (("ours", f"hf_pretrain {preset}"), ("hf", f"plain HF (run_mlm.py way, {hf_model})")):
        curve = results[side]["curve"]
        axes[0].plot([c["minutes"] for c in curve], [c["loss"] for c in curve], marker="o", label=label)
        axes[1].plot([c["minutes"] for c in curve], [100 * c["accuracy"] for c in curve], marker="o", label=label)
    axes[0].set(xlabel="training minutes (2-core CPU, one core each)", ylabel="validation MLM loss (15 % masks)")
    axes[1].set(xlabel="training minutes (2-core CPU, one core each)", ylabel="validation MLM accuracy (%)")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def decide_precision(args: argparse.Namespace) -> None:
    """``args.bf16`` as given, or the presets' ``bf16: auto`` decided here on one core, as each side trains, for both
    sides."""
    if args.bf16 is None:
        from hf_pretrain.runtime.precision import choose_bf16

        torch.set_num_threads(1)
        args.bf16, reason = choose_bf16()
        torch.set_num_threads(os.cpu_count() or 1)
        print(f"precision: {reason}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_file", default=str(ROOT.parent / "shared" / "data" / "wikipedia"))
    parser.add_argument("--prepared_dataset", default=None,
                        help="a `hf-pretrain prepare` folder: its documents and tokenizer instead of --train_file's")
    parser.add_argument("--glue_dir", default=str(ROOT.parent / "shared" / "data" / "glue"))
    parser.add_argument("--output_dir", default=str(ROOT / "outputs" / "bench_quality"))
    parser.add_argument("--config", default=str(RECOMMENDED), help="ours: the preset (default: budget_match.yaml)")
    parser.add_argument("--ours_args", default="", help="ours: flags on top of the preset, e.g. \"--isolate_documents true\"")
    parser.add_argument("--hf_model_type", default="bert", choices=["bert", "modernbert"],
                        help="plain HF's architecture: BERT (default) or the preset's own, trained run_mlm.py's way")
    parser.add_argument("--evals", type=float, nargs="+", default=[5, 10, 20, 30], help="minutes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--vocab_size", type=int, default=16384)
    parser.add_argument("--max_documents", type=int, default=None, help="a smaller corpus (quick runs)")
    parser.add_argument("--skip_glue", action="store_true")
    parser.add_argument("--report_only", action="store_true", help="write the report again from the saved sides")
    parser.add_argument("--side", choices=["ours", "hf"], help=argparse.SUPPRESS)
    parser.add_argument("--bf16", type=lambda v: v.lower() == "true", default=None,
                        help="true or false for both sides (default: the budget preset's auto, decided here)")
    args = parser.parse_args()
    if len(args.evals) < 2:  # the time to loss is read off the curve between two marks, and the report needs one
        parser.error("--evals: give two marks or more (minutes), e.g. --evals 1.5 3")
    work = Path(args.output_dir)
    if args.report_only:
        results = {side: json.loads((work / f"{side}.json").read_text()) for side in ("ours", "hf")}
        if (work / "results.json").is_file():
            results.update({k: v for k, v in json.loads((work / "results.json").read_text()).items()
                            if k in ("mrpc", "glue")})
        report(work, results, len(args.seeds))
        return

    if args.side:
        result = run_side(args.side, work, args)
        (work / f"{args.side}.json").write_text(json.dumps(result, indent=1))
        return

    work.mkdir(parents=True, exist_ok=True)
    decide_precision(args)
    prepare(work, args)
    child = [sys.executable, __file__, "--output_dir", str(work), "--train_file", args.train_file,
             "--config", args.config, "--evals", *map(str, args.evals), "--bf16", str(args.bf16).lower(),
             "--ours_args", args.ours_args, "--hf_model_type", args.hf_model_type]
    child += ["--prepared_dataset", args.prepared_dataset] if args.prepared_dataset else []
    sides = {side: subprocess.Popen([*child, "--side", side], stdout=open(work / f"{side}.log", "w"),
                                    stderr=subprocess.STDOUT, env=one_core_env())
             for side in ("ours", "hf")}
    for side, process in sides.items():
        if process.wait() != 0:
            sys.exit(f"the {side} side failed: see {work / f'{side}.log'}")
    results = {side: json.loads((work / f"{side}.json").read_text()) for side in sides}
    if not args.skip_glue:
        results["glue"] = glue_table(work / "ours" / "model", work / "glue", args)
    report(work, results, len(args.seeds))


def report(work: Path, results: dict, n_seeds: int) -> None:
    """The table, the time-to-loss ratios, throughput and MFU, the GLUE table: results.json, results.md, curves.png."""
    ours, hf = results["ours"]["curve"], results["hf"]["curve"]
    target = ours[-1]["loss"]
    minutes, extrapolated = time_to_loss(hf, target)
    ratio = minutes / ours[-1]["minutes"]
    # A line through two points says little far past them: beyond EXTRAPOLATION_LIMIT times plain HF's measured
    # time, report the bound and the slope rather than a figure (a flat curve would give astronomic minutes).
    out_of_reach = extrapolated and minutes > EXTRAPOLATION_LIMIT * hf[-1]["minutes"]
    # The other way round, without extrapolating: when do we reach plain HF's final loss?
    ours_minutes, _ = time_to_loss(ours, hf[-1]["loss"])
    early = ours[0]["loss"] <= hf[-1]["loss"]  # crossed before its first evaluation: the ratio is a lower bound
    slope = (hf[-1]["loss"] - hf[-2]["loss"]) / math.log2(hf[-1]["minutes"] / hf[-2]["minutes"])
    results["time_to_loss"] = {"target_loss": target, "extrapolated": extrapolated,
                               "hf_minutes": None if out_of_reach else minutes,
                               "ratio": None if out_of_reach else ratio,
                               "ratio_above": EXTRAPOLATION_LIMIT * hf[-1]["minutes"] / ours[-1]["minutes"]
                               if out_of_reach else None,
                               "hf_loss_per_doubling": slope, "ours_minutes_to_hf_final_loss": ours_minutes,
                               "ratio_at_hf_final_loss": hf[-1]["minutes"] / ours_minutes,
                               "ours_under_it_at_first_evaluation": early}
    lines = ["| training minutes (ours / HF) | ours loss | ours accuracy | plain HF loss | plain HF accuracy |",
             "|---|---|---|---|---|"]
    for a, b in zip(ours, hf):
        when = f"{a['minutes']:g}" if a["minutes"] == b["minutes"] else f"{a['minutes']:g} / {b['minutes']:g}"
        lines.append(f"| {when} | {a['loss']:.3f} | {100 * a['accuracy']:.1f} % | {b['loss']:.3f} | "
                     f"{100 * b['accuracy']:.1f} % |")
    if out_of_reach:
        reach = (f"not within {EXTRAPOLATION_LIMIT:g}x its measured time on its last slope ({slope:+.3f} loss per "
                 f"doubling of time; extrapolated), so more than "
                 f"{results['time_to_loss']['ratio_above']:,.1f}x ours")
    else:
        reach = (f"{'~' if extrapolated else ''}{minutes:,.0f} minutes{' (extrapolated)' if extrapolated else ''}, "
                 f"{ratio:,.1f}x ours")
    lines += ["", f"time to our final loss ({target:.3f}, at {ours[-1]['minutes']:g} minutes): plain HF {reach}",
              f"time to plain HF's final loss ({hf[-1]['loss']:.3f}, at {hf[-1]['minutes']:g} minutes): ours "
              + (f"already under it at its first evaluation ({ours_minutes:g} minutes), so at least "
                 f"{hf[-1]['minutes'] / ours_minutes:.1f}x faster" if early else
                 f"{ours_minutes:.1f} minutes (interpolated), {hf[-1]['minutes'] / ours_minutes:.1f}x faster")]
    if hf[-1]["minutes"] < 0.9 * ours[-1]["minutes"]:
        # Plain HF's schedule is sized by a step-time probe at its start: a busy machine then makes it too short.
        lines.append(f"warning: plain HF's schedule ended at {hf[-1]['minutes']:g} minutes, before the budget (its "
                     f"step-time probe measured slower steps than it then ran): its final loss is a "
                     f"{hf[-1]['minutes']:g}-minute one; measure again with nothing else running")
    for side in ("ours", "hf"):
        r = results[side]
        precision = r.get("precision", "bf16")
        line = (f"{side} ({r.get('model_type', 'bert')}): {r['tokens_per_second']:,.0f} tokens/s in {precision}, MFU {100 * r['mfu']:.0f} % of this "
                f"core's {precision} matmul peak ({r['matmul_peak_tflops'] * 1000:.0f} GFLOP/s)")
        if precision != "bf16":
            line += (f", {100 * r['mfu_bf16_peak']:.0f} % of its bf16 peak "
                     f"({r['matmul_peaks_tflops']['bf16'] * 1000:.0f} GFLOP/s)")
        if "mfu_model_shape_peak" in r:  # results written before the model-shape peak was measured lack it
            line += (f", {100 * r['mfu_model_shape_peak']:.0f} % of its own layers' matmul shapes' peak "
                     f"({r['model_shape_peak_tflops'] * 1000:.0f} GFLOP/s)")
        lines.append(f"{line}, {r['parameters']:,} parameters")
    lines.append(f"tokens/s: ours {results['ours']['tokens_per_second'] / results['hf']['tokens_per_second']:.2f}x "
                 f"plain HF's")
    if "glue" in results:
        lines += ["", results["glue"].rstrip()]
    if "mrpc" in results:  # a report of the results of an earlier version, which fine-tuned MRPC alone
        lines += ["", "| MRPC dev | accuracy | F1 |", "|---|---|---|"]
        for name, summary in results["mrpc"].items():
            acc, f1 = summary["validation_accuracy"], summary["validation_f1"]
            lines.append(f"| {name} ({n_seeds} seeds) | {100 * acc['mean']:.1f} ± {100 * acc['std']:.1f} | "
                         f"{100 * f1['mean']:.1f} ± {100 * f1['std']:.1f} |")
    (work / "results.json").write_text(json.dumps(results, indent=1))
    (work / "results.md").write_text("\n".join(lines) + "\n")
    plot(results, work / "curves.png")
    print("\n".join(lines))

if __name__ == "__main__":
    main()

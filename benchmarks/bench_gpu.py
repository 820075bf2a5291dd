"""GPU training throughput and model-FLOPs utilization: hf_pretrain against the plain-HF way, bf16, same run.

For a preset's architecture (bert_base, modernbert_base) at a sequence length, both sides train on the same packed
rows of token ids (every row full: no padding on either side) through the stock `Trainer`:

- ours: the preset's objective and collator (`DataCollatorForMaskedLM`), the architecture's training-time class
        (sparse prediction; with --isolate, document isolation through the attention implementation named);
- hf:   `DataCollatorForLanguageModeling` at the same masking rate and the stock `*ForMaskedLM`.

Tokens/s counts the tokens of the timed optimizer steps (after warm-up steps); MFU divides the model FLOPs those
steps execute (`flops_per_token`: 6 x the matmul weights, attention over the sequence, the MLM head where it runs)
by the device's peak, measured in the same run with large bf16 matmuls, and by the H100's 989 TFLOP/s datasheet
dense bf16 figure. Prints `<figure>: <ratio>x (ours <value>, hf <value> <unit>)` and writes JSON to --output.

    python benchmarks/bench_gpu.py --preset bert_base --seq 128 --batch_size 256 --steps 30
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
H100_BF16_DENSE_TFLOPS = 989.0
CUDA = torch.cuda.is_available()  # without a GPU the script still runs (a smoke test, tiny sizes, on the CPU)


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def matmul_peak(n: int = 8192, repeat: int = 10) -> float:
    n = n if CUDA else 512
    a, b = (torch.randn(n, n, device="cuda" if CUDA else "cpu", dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    sync()
    start = time.perf_counter()
    for _ in range(repeat):
        a @ b
    sync()
    return repeat * 2 * n**3 / (time.perf_counter() - start)


def flops_per_token(config, seq: int, predicted_fraction: float) -> float:
    hidden, layers = config.hidden_size, config.num_hidden_layers
    glu = 2 if config.model_type == "modernbert" else 1
    per_layer = 4 * hidden * hidden + (glu + 1) * hidden * config.intermediate_size
    head = predicted_fraction * (hidden * hidden + hidden * config.vocab_size)
    if config.model_type == "modernbert":  # local layers attend within their window only
        window = min(seq, config.local_attention)
        context = sum(seq if kind == "full_attention" else window for kind in config.layer_types) / layers
    else:
        context = seq
    return 3 * (2 * (layers * per_layer + head) + 4 * layers * hidden * context)


class Timer:
    """A callback that times optimizer steps after ``warmup`` of them."""

    def __init__(self, warmup: int):
        from transformers import TrainerCallback

        outer = self

        class _Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == warmup:
                    sync()
                    outer.start, outer.tokens_at_start = time.perf_counter(), state.num_input_tokens_seen

            def on_train_end(self, args, state, control, **kwargs):
                sync()
                outer.seconds = time.perf_counter() - outer.start
                outer.tokens = state.num_input_tokens_seen - outer.tokens_at_start

        self.callback = _Callback()


def run(side: str, args: argparse.Namespace) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling, Trainer, TrainingArguments

    from hf_pretrain import DataCollatorForMaskedLM, MaskingConfig, ModelArguments, PretrainingTrainer
    from hf_pretrain.data.tokenizer import BERT_SPECIALS, train_tokenizer
    from hf_pretrain.models.loading import build_config, build_pretraining_model
    from hf_pretrain.objectives.metrics import MaskedLMMetrics

    preset = yaml.safe_load((ROOT / "recipes" / "configs" / f"{args.preset}.yaml").read_text())
    model_type = preset.get("model_type", "bert")
    # A tokenizer only for its special tokens; the vocabulary size is the preset's (the embedding table and head).
    tokenizer = train_tokenizer(["hello world"] * 10, "wordpiece", BERT_SPECIALS, vocab_size=100)
    vocab = preset["vocab_size"]
    g = torch.Generator().manual_seed(0)
    n_rows = args.batch_size * (args.steps + args.warmup)
    ids = torch.randint(5, vocab, (n_rows, args.seq), generator=g)
    documents = max(1, args.seq // 256)  # packed rows hold a few documents, each starting with [CLS]
    ids[:, :: args.seq // documents] = tokenizer.cls_token_id
    rows = Dataset.from_dict({"input_ids": ids.tolist(), "sequence_id": list(range(n_rows))})
    masking = MaskingConfig(mlm_probability=preset.get("mlm_probability", 0.15))
    model_args = ModelArguments(
        model_type=model_type, **{k: preset[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                          "intermediate_size") if k in preset},
        config_overrides=preset.get("config_overrides"), attn_implementation=args.attn_implementation,
    )

    class FullVocabulary:  # the preset's vocabulary size for the model, the tokenizer's ids for specials
        def __len__(self):
            return vocab

        def __getattr__(self, name):
            return getattr(tokenizer, name)

    torch.manual_seed(0)
    training = TrainingArguments(
        output_dir=str(Path(args.output).parent / f"run-{side}"), per_device_train_batch_size=args.batch_size,
        max_steps=args.steps + args.warmup, bf16=True, learning_rate=1e-4, logging_steps=10**9, save_strategy="no",
        report_to="none", include_num_input_tokens_seen="non_padding", dataloader_num_workers=2,
        remove_unused_columns=False, torch_compile=args.compile, use_cpu=not CUDA,
    )
    timer = Timer(args.warmup)
    if side == "ours":
        model = build_pretraining_model(model_args, FullVocabulary(), with_nsp=False, max_seq_length=args.seq,
                                        isolate_documents=args.isolate)
        collator = DataCollatorForMaskedLM(tokenizer, masking, isolate_documents=args.isolate)
        trainer = PretrainingTrainer(model=model, args=training, train_dataset=rows, data_collator=collator,
                                     step_metrics=MaskedLMMetrics(), callbacks=[timer.callback])
        predicted = masking.mlm_probability
    else:
        config = build_config(model_args, FullVocabulary(), args.seq)
        model = AutoModelForMaskedLM.from_config(config)
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=masking.mlm_probability)
        trainer = Trainer(model=model, args=training, train_dataset=rows.remove_columns("sequence_id"),
                          data_collator=collator, callbacks=[timer.callback])
        predicted = 1.0
    trainer.train()
    tokens_per_second = timer.tokens / timer.seconds
    return {"side": side, "tokens_per_second": tokens_per_second,
            "model_tflops": flops_per_token(model.config, args.seq, predicted) * tokens_per_second / 1e12,
            "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if CUDA else None,
            "parameters": model.num_parameters()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="bert_base")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--isolate", action="store_true", help="ours: packed documents kept apart")
    parser.add_argument("--attn_implementation", default=None)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--output", default="bench_gpu.json")
    args = parser.parse_args()

    peak = matmul_peak()
    device = torch.cuda.get_device_name() if CUDA else "cpu"
    results = {"args": vars(args), "device": device, "matmul_peak_tflops": peak / 1e12}
    for side in ("hf", "ours"):
        results[side] = run(side, args)
        if CUDA:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    ours, hf = results["ours"], results["hf"]
    label = f"{args.preset} seq {args.seq}" + (" isolated" if args.isolate else "")
    print(f"{label} tokens/s: {ours['tokens_per_second'] / hf['tokens_per_second']:.2f}x "
          f"(ours {ours['tokens_per_second']:,.0f}, hf {hf['tokens_per_second']:,.0f} tokens/s)")
    for side in ("ours", "hf"):
        r = results[side]
        r["mfu_measured_peak"] = r["model_tflops"] / (peak / 1e12)
        r["mfu_datasheet"] = r["model_tflops"] / H100_BF16_DENSE_TFLOPS
    print(f"{label} MFU (of the measured {peak / 1e12:.0f} TFLOP/s bf16 peak): "
          f"{ours['mfu_measured_peak'] / hf['mfu_measured_peak']:.2f}x (ours {100 * ours['mfu_measured_peak']:.1f}, "
          f"hf {100 * hf['mfu_measured_peak']:.1f} %)")
    Path(args.output).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""Training throughput and peak memory: hf_pretrain's BERT pretraining step vs the plain-HF way, same run.

Both sides train a preset's architecture (default bert_small: 4 layers, hidden 512) on the same MLM + NSP pairs, built
once from the embedded corpus, in the same order. The embedded corpus fills only a ~10k-token WordPiece vocabulary,
so the models get the preset's embedding table (30,522 rows for bert_small) as a Wikipedia-trained one would:

- ours: ``DataCollatorForMaskedLM`` + BERT with sparse MLM prediction (hf_pretrain.models.heads);
- hf:   ``DataCollatorForLanguageModeling`` (padding per batch) + the stock ``BertForPreTraining``.

Each side runs in its own process (so that its peak resident memory is its own), alternating, and reports
effective tokens/s: non-padding tokens per second of optimizer steps (forward, backward, AdamW, clipping).
Prints `<figure>: <ratio>x (ours <value>, hf <value> <unit>)`.

    python benchmarks/bench_training.py [--preset bert_small] [--steps 4] [--batch_size 32] [--rounds 1] \
        [--device cpu|cuda] [--bf16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from measure import peak_resident_mb  # benchmarks/ is the script's folder, hence on sys.path

PRESETS = Path(__file__).resolve().parent.parent / "recipes" / "configs"
H100_BF16_DENSE_TFLOPS = 989.0


def load_preset(name: str) -> dict:
    return yaml.safe_load((PRESETS / f"{name}.yaml").read_text())


def prepare(workdir: Path, preset: dict, max_seq_length: int) -> None:
    """NSP pairs and the tokenizer, saved for both sides to load."""
    from hf_pretrain import build_pretraining_dataset, stdlib_docstrings, train_wordpiece_tokenizer

    documents = stdlib_docstrings()
    tokenizer = train_wordpiece_tokenizer(list(documents["text"]), vocab_size=preset["vocab_size"])
    tokenizer.save_pretrained(workdir / "tokenizer")
    from datasets import DatasetDict

    pairs = build_pretraining_dataset(DatasetDict(train=documents), tokenizer, "mlm_nsp",
                                      max_seq_length=max_seq_length)["train"]
    pairs.shuffle(seed=0).save_to_disk(str(workdir / "pairs"))


def flops_per_token(config, seq_len: int) -> float:
    """Training FLOPs per token: 6 x the non-embedding parameters, plus attention's scores and mixing
    (12 x layers x hidden x sequence length), as in the PaLM paper's MFU accounting."""
    per_layer = 4 * config.hidden_size**2 + 2 * config.hidden_size * config.intermediate_size  # attention + FFN
    head = config.hidden_size * config.vocab_size  # the MLM projection at every position, as the stock model does
    dense = config.num_hidden_layers * per_layer + head
    return 6 * dense + 12 * config.num_hidden_layers * config.hidden_size * seq_len


def run_side(side: str, workdir: Path, args: argparse.Namespace) -> dict:
    from datasets import load_from_disk
    from transformers import BertConfig, BertForPreTraining, DataCollatorForLanguageModeling

    from hf_pretrain import DataCollatorForMaskedLM, load_tokenizer
    from hf_pretrain import TrainingBertForPreTraining

    preset = load_preset(args.preset)
    tokenizer = load_tokenizer(str(workdir / "tokenizer"))
    pairs = load_from_disk(str(workdir / "pairs"))
    config = BertConfig(
        vocab_size=max(len(tokenizer), preset["vocab_size"]), hidden_size=preset["hidden_size"], num_hidden_layers=preset["num_hidden_layers"],
        num_attention_heads=preset["num_attention_heads"], intermediate_size=preset["intermediate_size"],
        max_position_embeddings=512, type_vocab_size=2, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    if side == "ours":
        model = TrainingBertForPreTraining(config)
        collator = DataCollatorForMaskedLM(tokenizer, seed=0)
    else:
        model = BertForPreTraining(config)
        collator = DataCollatorForLanguageModeling(tokenizer, seed=0)
    device = torch.device(args.device)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    n = args.batch_size
    batches = [[pairs[i] for i in range(s * n, (s + 1) * n)] for s in range(args.steps + 1)]

    def step(features) -> int:
        batch = {k: v.to(device) for k, v in collator(features).items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return int(batch["attention_mask"].sum())

    step(batches[0])  # warm-up: allocator, kernels, optimizer state
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    tokens = sum(step(b) for b in batches[1:])
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = {
        "tokens_per_second": tokens / seconds,
        "padding_fraction": 1 - tokens / sum(max(len(f["input_ids"]) for f in b) * n for b in batches[1:]),
        "peak_memory_mb": peak_resident_mb(),
        "flops_per_token": flops_per_token(config, 128),
        "vocab_size": config.vocab_size,
    }
    if device.type == "cuda":
        result["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="bert_small", help="a recipes/configs preset: bert_mini, bert_small, ...")
    parser.add_argument("--steps", type=int, default=4, help="measured optimizer steps per side and round")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--peak_tflops", type=float, default=H100_BF16_DENSE_TFLOPS,
                        help="the device's peak for MFU (CUDA only); default: H100 SXM dense bf16")
    parser.add_argument("--side", choices=["ours", "hf"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.side:  # a child process: one side, one round
        print(json.dumps(run_side(args.side, Path(args.workdir), args)))
        return

    with tempfile.TemporaryDirectory() as workdir:
        prepare(Path(workdir), load_preset(args.preset), 128)
        results = {"ours": [], "hf": []}
        for _ in range(args.rounds):
            for side in ("ours", "hf"):
                command = [sys.executable, __file__, "--side", side, "--workdir", workdir, "--preset", args.preset,
                           "--steps", str(args.steps),
                           "--batch_size", str(args.batch_size), "--device", args.device,
                           *(["--bf16"] if args.bf16 else [])]
                out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
                results[side].append(json.loads(out.strip().splitlines()[-1]))

    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in results[side])

    setting = (f"{args.preset} MLM+NSP, vocab {results['ours'][0]['vocab_size']:,}, batch {args.batch_size}, {args.device}"
               f"{' bf16' if args.bf16 else ' fp32'}")
    ours, hf = median("ours", "tokens_per_second"), median("hf", "tokens_per_second")
    print(f"training effective tokens/s ({setting}): {ours / hf:.2f}x (ours {ours:,.0f}, hf {hf:,.0f} tokens/s)")
    mem_ours, mem_hf = median("ours", "peak_memory_mb"), median("hf", "peak_memory_mb")
    kind = "GPU allocated" if args.device.startswith("cuda") else "resident"
    print(f"peak memory ({kind}, {setting}): {mem_ours / mem_hf:.2f}x "
          f"(ours {mem_ours:,.0f}, hf {mem_hf:,.0f} MB)")
    print(f"padding in the hf batches: {median('hf', 'padding_fraction'):.1%} of the tokens")
    if args.device.startswith("cuda"):
        per_token = results["ours"][0]["flops_per_token"]
        for side, value in (("ours", ours), ("hf", hf)):
            print(f"MFU {side}: {value * per_token / (args.peak_tflops * 1e12):.1%} "
                  f"of {args.peak_tflops:g} TFLOP/s")


if __name__ == "__main__":
    main()

"""The ``hf-pretrain`` command:

- ``hf-pretrain prepare --train_file FILE [FILE ...] --output_dir DIR [flags]``: clean, deduplicate, split, pack;
- ``hf-pretrain compare DIR [DIR ...]``: the GLUE results of several fine-tuning runs in one table;
- ``hf-pretrain report OUTPUT_DIR``: a pretraining run's figures and ``report.md`` (drawn again from its logs);
- ``hf-pretrain similarity MODEL_DIR --glue_dir DIR [--task stsb] [--pooling cls|mean] [--from_scratch]``: sentence
  embeddings judged without training: Spearman's rho of cosine similarities against a pair task's gold scores (of
  the checkpoint, or of its architecture randomly initialized, the baseline).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from .config import parse_config, peek_setting
from .errors import HfPretrainError, Interrupted, cli_entry
from .glue.score import compare_results
from .hub.report import write_run_report
from .prepare.arguments import PrepareArguments
from .prepare.cleaning import QualityFilters
from .prepare.executor import prepare_corpus

COMMANDS = ("prepare", "compare", "report", "similarity", "flags")


USAGE = {
    "prepare": "hf-pretrain prepare --train_file FILE [FILE ...] --output_dir DIR [flags]  (prepare --help lists them)",
    "compare": "hf-pretrain compare DIR [DIR ...]: the GLUE results of finetune_glue.py runs (their --output_dir) "
               "in one table",
    "report": "hf-pretrain report OUTPUT_DIR: a pretraining run's figures and report.md, drawn again from its logs",
    "similarity": "hf-pretrain similarity MODEL_DIR --glue_dir DIR [--task stsb] [--pooling cls|mean] "
                  "[--from_scratch]  (similarity --help lists them)",
    "flags": "hf-pretrain flags [--objective NAME] [--plugins FILE ...]: the flags a pretraining run of that "
             "objective takes, by concern (Markdown, from the argument classes' help)",
}
HELP = ("-h", "--help")


@cli_entry
def main() -> None:
    argv = sys.argv[1:]
    if not argv or argv[0] in HELP:
        print("usage:\n" + "\n".join(f"  {line}" for line in USAGE.values()))
        return
    if argv[0] not in COMMANDS:
        raise HfPretrainError(f"usage: hf-pretrain {{{','.join(COMMANDS)}}} [flags]; hf-pretrain --help says more")
    command, rest = argv[0], argv[1:]
    if command in ("compare", "report", "flags") and any(arg in HELP for arg in rest):
        print(f"usage: {USAGE[command]}")
        return
    if command == "compare":
        print(compare(rest), end="")
        return
    if command == "report":
        if len(rest) != 1:
            raise HfPretrainError("usage: hf-pretrain report OUTPUT_DIR, the --output_dir of a pretraining run")
        print(f"wrote {write_run_report(rest[0])}")
        return
    if command == "similarity":
        print(similarity(rest))
        return
    if command == "flags":
        print(flags(rest), end="")
        return
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args, filters = parse_config((PrepareArguments, QualityFilters), rest)
    try:
        report = prepare_corpus(args, filters)
    except KeyboardInterrupt:  # not a training run: there is no checkpoint, and nothing finished is lost
        raise Interrupted(f"the preparation into {args.output_dir} stopped before it finished (the folder holds no "
                          "fingerprint.json, so nothing reads it as done); rerun the same command to prepare it "
                          "from the start", 130) from None
    if report is None:
        print(f"submitted the preparation of {args.output_dir} to Slurm ({args.tasks} clean task(s), then one finish "
              f"task): sbatch scripts, logs and progress in {args.output_dir}/.datatrove/; rerun the same command to "
              "resubmit what did not finish")
        return
    counts = {stage["stage"]: stage.get("documents") for stage in report["stages"]}
    print(f"prepared {args.output_dir}: documents per stage {counts}; splits {report['splits']}; "
          f"report in {args.output_dir}/report.md")


def flags(argv: list[str]) -> str:
    """``hf-pretrain flags [--objective NAME] [--plugins ...]``: the generated flag reference of one objective's
    runs (a plugin's objective too)."""
    from .flags import flag_reference
    from .objectives.arguments import PretrainingArguments
    from .runtime import load_plugins

    parser = argparse.ArgumentParser(prog="hf-pretrain flags", add_help=False)
    parser.add_argument("--objective", default=PretrainingArguments.objective)
    parser.add_argument("--plugins", nargs="+", default=[])
    known, rest = parser.parse_known_args(argv)
    if rest:
        raise HfPretrainError(f"usage: {USAGE['flags']}")
    load_plugins(known.plugins)
    objective = known.objective
    try:
        return flag_reference(str(objective))
    except ValueError as err:
        raise HfPretrainError(f"--objective: {err}") from None


def compare(folders: list[str]) -> str:
    """The table of :func:`compare_results` for fine-tuning output folders (each holding ``glue_results.json``)."""
    if not folders:
        raise HfPretrainError("usage: hf-pretrain compare DIR [DIR ...], each a fine-tuning run's --output_dir")
    results = {}
    for folder in folders:
        path = os.path.join(folder, "glue_results.json")
        if not os.path.isfile(path):
            raise HfPretrainError(f"{folder}: no glue_results.json; give the --output_dir of a finetune_glue.py run")
        with open(path, encoding="utf-8") as f:
            results[folder] = json.load(f)
    return compare_results(results)


def similarity(argv: list[str]) -> str:
    """``MODEL_DIR``'s STS-style score, or (``--from_scratch``) that of its architecture randomly initialized: one
    line, ``<task> cosine Spearman (<pooling> pooling, <weights>): <rho>``."""
    import argparse

    from transformers import AutoConfig, AutoModel, AutoTokenizer, set_seed

    from .glue.similarity import similarity_spearman

    parser = argparse.ArgumentParser(prog="hf-pretrain similarity")
    parser.add_argument("model_dir")
    parser.add_argument("--glue_dir", required=True)
    parser.add_argument("--task", default="stsb", choices=("stsb", "mrpc", "qqp"))
    parser.add_argument("--pooling", default="cls", choices=("cls", "mean"))
    parser.add_argument("--max_samples", type=int, default=None)
    parser.add_argument("--from_scratch", action="store_true",
                        help="score MODEL_DIR's architecture and tokenizer with every weight drawn afresh (under "
                             "--seed): the baseline its pretrained score reads against, as finetune_glue.py's flag")
    parser.add_argument("--seed", type=int, default=None, help="the random weights' seed, with --from_scratch (0)")
    args = parser.parse_args(argv)
    if args.seed is not None and not args.from_scratch:
        raise HfPretrainError("--seed draws the weights of --from_scratch; a saved model's weights are its own")
    args.seed = args.seed or 0
    if not os.path.isfile(os.path.join(args.model_dir, "config.json")):
        raise HfPretrainError(f"{args.model_dir}: no config.json; give a saved model folder")
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    if args.from_scratch:
        set_seed(args.seed)  # transformers draws initial weights from torch's global generator
        model = AutoModel.from_config(AutoConfig.from_pretrained(args.model_dir))
    else:
        model = AutoModel.from_pretrained(args.model_dir)
    rho = similarity_spearman(model, tokenizer, args.task, args.glue_dir, args.pooling, args.max_samples)
    weights = f"random init, seed {args.seed}" if args.from_scratch else "pretrained"
    return f"{args.task} cosine Spearman ({args.pooling} pooling, {weights}): {rho:.4f}"

"""Fine-tune a pretrained checkpoint on one GLUE task, several, or all of them, over seeds, with offline metrics.

    python recipes/finetune_glue.py --config recipes/configs/glue.yaml --model_name_or_path outputs/debug \
        --task_name mrpc --glue_dir ../shared/data/glue --seeds 1 2 3
    python recipes/finetune_glue.py ... --task_name all          # every task in --glue_dir, then the GLUE score

One task: <output_dir>/glue_results.json and .md, each seed's classifier in <output_dir>/seed_<seed>/. Several:
the same per task in <output_dir>/<task>/, and the GLUE table in <output_dir>/glue_results.json and .md.
"""

from __future__ import annotations

import logging
import os

from transformers import TrainingArguments

from hf_pretrain.config import parse_config
from hf_pretrain.data.tokenizer import load_tokenizer
from hf_pretrain.errors import HfPretrainError, cli_entry
from hf_pretrain.glue.arguments import GlueArguments
from hf_pretrain.glue.finetune import finetune_task, task_training_args, tasks_to_run, write_glue_table
from hf_pretrain.hub.push import prepare_push, push_folder
from hf_pretrain.runtime import lock_output_dir
from hf_pretrain.runtime.process import configure_logging, finish, training_args_for_trainer

logger = logging.getLogger("finetune_glue")


@cli_entry
def main() -> None:
    glue_args, training_args = parse_config((GlueArguments, TrainingArguments))
    configure_logging(training_args)

    repo_id = prepare_push(training_args)  # before any work, so an unreachable Hub fails the run at once
    lock_output_dir(training_args.output_dir, training_args.process_index == 0)  # a second run on this folder is refused while this one lives
    tokenizer = load_tokenizer(glue_args.model_name_or_path, glue_args.trust_remote_code, "--model_name_or_path",
                               advice="copy into it the tokenizer files of the run that trained it (the pretraining "
                               "recipes save them beside the weights)")
    tasks, missing = tasks_to_run(glue_args)
    if not tasks:
        raise HfPretrainError(f"--glue_dir {glue_args.glue_dir}: no GLUE task folder in it (CoLA/, SST-2/, MRPC/, ...)")
    args = training_args_for_trainer(training_args)
    overrides = glue_args.task_overrides or {}
    results = {}
    for task in tasks:
        output_dir = os.path.join(args.output_dir, task.name) if glue_args.several_tasks else args.output_dir
        trainer, results[task.name] = finetune_task(
            task, glue_args, tokenizer, task_training_args(args, overrides.get(task.name), output_dir)
        )

    if trainer.is_world_process_zero():
        if glue_args.several_tasks:
            write_glue_table(args.output_dir, glue_args.model_name_or_path, results, missing)
        with open(os.path.join(args.output_dir, "glue_results.md"), encoding="utf-8") as f:
            print(f.read(), end="")
        if repo_id:
            push_folder(trainer.args.output_dir, repo_id, training_args.hub_token,
                        f"Fine-tuned on GLUE {', '.join(t.folder for t in tasks)}")
    finish(trainer)


if __name__ == "__main__":
    main()

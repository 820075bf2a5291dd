"""Fine-tune a pretrained checkpoint on a GLUE task, over one or more seeds, with offline metrics.

    python recipes/finetune_glue.py --config recipes/configs/glue.yaml --model_name_or_path outputs/debug \
        --task_name mrpc --glue_dir ../shared/data/glue --seeds 1 2 3

Results: <output_dir>/glue_results.json and glue_results.md; each seed's classifier in <output_dir>/seed_<seed>/.
"""

from __future__ import annotations

import logging
import os

from transformers import TrainingArguments

from hf_pretrain.glue.arguments import GlueArguments
from hf_pretrain.config import parse_config
from hf_pretrain.errors import BadInput, cli_entry
from hf_pretrain.glue.finetune import finetune_one_seed, tokenize_glue, write_glue_results
from hf_pretrain.glue.tasks import GLUE_TASKS, load_glue
from hf_pretrain.hub.push import prepare_push, push_folder
from hf_pretrain.hub.model_card import write_model_card
from hf_pretrain.data.tokenizer import load_tokenizer
from hf_pretrain.training.run import configure_logging, finish, training_args_for_trainer

logger = logging.getLogger("finetune_glue")


@cli_entry
def main() -> None:
    glue_args, training_args = parse_config((GlueArguments, TrainingArguments))
    configure_logging(training_args)
    task = GLUE_TASKS[glue_args.task_name]

    repo_id = prepare_push(training_args)  # before any work, so an unreachable Hub fails the run at once
    tokenizer = load_tokenizer(glue_args.model_name_or_path, glue_args.trust_remote_code, "--model_name_or_path")
    bad = BadInput(glue_args.on_bad_input)
    data = load_glue(task, glue_args.glue_dir, bad)
    if bad.counts:
        logger.warning("%s", bad.summary())
    if glue_args.max_train_samples:
        data["train"] = data["train"].select(range(min(glue_args.max_train_samples, len(data["train"]))))
    if glue_args.max_eval_samples:
        for split in data:
            if split != "train":
                data[split] = data[split].select(range(min(glue_args.max_eval_samples, len(data[split]))))
    data = tokenize_glue(data, tokenizer, glue_args.max_seq_length)

    seeds = glue_args.seeds or [training_args.seed]
    args = training_args_for_trainer(training_args)
    runs = []
    for seed in seeds:
        trainer, metrics = finetune_one_seed(
            task, data, tokenizer, glue_args.model_name_or_path, args, seed, glue_args.from_scratch,
            glue_args.trust_remote_code, glue_args.use_safetensors,
        )
        logger.info("%s seed %d: %s", task.folder, seed, metrics)
        runs.append(metrics)
        if trainer.is_world_process_zero():
            write_model_card(
                trainer.args.output_dir,
                title=f"{task.folder} classifier fine-tuned from {glue_args.model_name_or_path}",
                summary=f"Fine-tuned with hf_pretrain on GLUE {task.folder} "
                f"({'random initialization baseline' if glue_args.from_scratch else 'from the pretrained weights'}).",
                sections={"Fine-tuning": {
                    "task": task.folder, "training examples": len(data["train"]), "seed": seed,
                    "epochs": training_args.num_train_epochs, "learning rate": training_args.learning_rate,
                    "batch size": training_args.per_device_train_batch_size, "max sequence length": glue_args.max_seq_length,
                }},
                metrics=metrics,
                tags=["text-classification", "glue", task.name],
                pipeline_tag="text-classification",
            )

    if trainer.is_world_process_zero():
        results = write_glue_results(
            training_args.output_dir, task, glue_args.model_name_or_path, seeds, runs, glue_args.from_scratch
        )
        with open(os.path.join(training_args.output_dir, "glue_results.md"), encoding="utf-8") as f:
            print(f.read(), end="")
        logger.info("summary: %s", results["summary"])
        if repo_id:
            push_folder(trainer.args.output_dir, repo_id, training_args.hub_token, f"Fine-tuned on GLUE {task.folder}")
    finish(trainer)


if __name__ == "__main__":
    main()

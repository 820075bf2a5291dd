"""Pretrain an encoder from raw text with the stock Trainer, with any registered objective: masked LM (``mlm``),
masked LM + next-sentence prediction (``mlm_nsp``, the default) or ELECTRA (``electra``).

    accelerate launch recipes/pretrain_bert.py --config recipes/configs/debug.yaml [--flag value ...]

Every TrainingArguments flag works; see the argument classes in hf_pretrain for the others.
"""

from __future__ import annotations

import logging
import os

from transformers import TrainingArguments, set_seed

from hf_pretrain.config import parse_config, peek_setting
from hf_pretrain.errors import HfPretrainError, cli_entry
from hf_pretrain.flags import foreign_flags, pretraining_argument_classes
from hf_pretrain.glue.probe import build_probes
from hf_pretrain.hub.model_card import write_pretraining_card
from hf_pretrain.hub.push import prepare_push, push_folder
from hf_pretrain.hub.report import write_run_report
from hf_pretrain.models.export import exported_parameters
from hf_pretrain.objectives import make_objective
from hf_pretrain.objectives.arguments import PretrainingArguments
from hf_pretrain.runtime import load_plugins, lock_output_dir
from hf_pretrain.runtime.process import configure_logging, finish, training_summary
from hf_pretrain.training.data import prepare_pretraining_data
from hf_pretrain.training.output_folder import claim_output_dir
from hf_pretrain.training.resume import CheckpointManager, run_settings
from hf_pretrain.training.run import pretraining_trainer, save_model, train_and_evaluate

logger = logging.getLogger("pretrain")


def main(required_objective: tuple[str, ...] = ()) -> None:
    """``required_objective``: the objectives a recipe of one family trains, its default first."""
    load_plugins(peek_setting("plugins", many=True))  # the user's own objectives register before any name is read
    # Only the chosen objective's own flags are parsed: another objective's (--generator_size with mlm) is refused.
    default = required_objective[0] if required_objective else PretrainingArguments.objective
    name = str(peek_setting("objective") or default)
    if required_objective and name not in required_objective:
        raise HfPretrainError(
            f"this recipe trains --objective {' or '.join(required_objective)}; for --objective {name} use "
            f"recipes/pretrain_bert.py"
        )
    model_args, data_args, pretraining_args, run_args, probe_args, *extras, training_args = parse_config(
        (*pretraining_argument_classes(name), TrainingArguments),
        defaults={"objective": default} if required_objective else None,
        others=foreign_flags(name), run=f"--objective {name}",
    )
    configure_logging(training_args)
    objective = make_objective(pretraining_args, training_args.seed, extras)
    objective.check_model(model_args)  # before any data work: gpt2 has no masked-LM head, say so now

    repo_id = prepare_push(training_args)  # before any work, so an unreachable Hub fails the run at once
    # After it (a run refused by the Hub leaves no folder behind): never write over a user's own files.
    claim_output_dir(training_args.output_dir, run_args.overwrite_output_dir, training_args.process_index == 0)
    lock_output_dir(training_args.output_dir, training_args.process_index == 0)  # a second run on this folder is refused while this one lives
    checkpoints = CheckpointManager(training_args, run_settings(model_args, data_args, pretraining_args,
                                                                objective.extra), run_args.overwrite_output_dir)
    checkpoint = checkpoints.resume()  # before any data work: another run's checkpoint is refused
    set_seed(training_args.seed)  # before the model is built: its initialization comes from the seed too

    data = prepare_pretraining_data(objective, model_args, data_args, training_args, checkpoint)
    model = objective.build_model(model_args, data.tokenizer, data_args.max_seq_length)
    probes = build_probes(
        probe_args.probe_tasks, probe_args.glue_dir, data.tokenizer, probe_args.probe_train_samples,
        probe_args.probe_eval_samples, probe_args.probe_pooling, data_args.max_seq_length,
    ) if probe_args.probe_tasks else []
    trainer = pretraining_trainer(objective, model, data, training_args, run_args, checkpoints, probes,
                                  probe_args.probe_every)
    metrics = train_and_evaluate(trainer, checkpoints)
    save_model(trainer, training_args.output_dir)  # the stock class(es), without training-only modules

    if trainer.is_world_process_zero():
        write_run_report(training_args.output_dir, training_summary(
            training_args, max_train_minutes=run_args.max_train_minutes, lr_schedule_clock=run_args.lr_schedule_clock))
        write_pretraining_card(
            training_args.output_dir, config=model.config, parameters=exported_parameters(model),
            trainer=trainer, objective=objective.title, objective_rows=objective.card_rows(), data_args=data_args,
            corpus=data.corpus_description, tokenizer=data.tokenizer_description,
            n_documents=data.n_documents, n_sequences=data.n_sequences, metrics=metrics,
            tags=list(objective.card_tags), pipeline_tag=objective.pipeline_tag,
        )
        if repo_id:
            push_folder(training_args.output_dir, repo_id, training_args.hub_token, f"Pretrained with hf_pretrain "
                        f"({objective.title})")
    logger.info("model, tokenizer and model card saved to %s", os.path.abspath(training_args.output_dir))
    finish(trainer)


if __name__ == "__main__":
    cli_entry(main)()

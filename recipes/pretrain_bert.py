"""Pretrain BERT from raw text with the stock Trainer: masked LM, optionally with next-sentence prediction.

    accelerate launch recipes/pretrain_bert.py --config recipes/configs/debug.yaml [--flag value ...]

Every TrainingArguments flag works; see hf_pretrain.arguments for the others.
"""

from __future__ import annotations

import logging
import os

from transformers import TrainingArguments, set_seed

from hf_pretrain.arguments import DataArguments, ModelArguments, PretrainingArguments
from hf_pretrain.config import parse_config
from hf_pretrain.errors import cli_entry
from hf_pretrain.hub import prepare_push, push_folder
from hf_pretrain.metrics import compute_pretraining_metrics, preprocess_logits_for_metrics
from hf_pretrain.model_card import masking_rows, write_pretraining_card
from hf_pretrain.modeling import build_pretraining_model
from hf_pretrain.pretraining_data import masked_lm_collator, prepare_pretraining_data
from hf_pretrain.training import (
    PretrainingTrainer,
    TimeBudgetCallback,
    configure_logging,
    finish,
    resume_checkpoint,
    train_and_evaluate,
    training_args_for_trainer,
)

logger = logging.getLogger("pretrain_bert")


@cli_entry
def main() -> None:
    model_args, data_args, objective, training_args = parse_config(
        (ModelArguments, DataArguments, PretrainingArguments, TrainingArguments)
    )
    configure_logging(training_args)

    repo_id = prepare_push(training_args)  # before any work, so an unreachable Hub fails the run at once
    checkpoint = resume_checkpoint(training_args)
    set_seed(training_args.seed)  # before the model is built: its initialization comes from the seed too

    data = prepare_pretraining_data(model_args, data_args, objective, training_args, checkpoint)
    tokenizer, sequences = data.tokenizer, data.sequences
    model = build_pretraining_model(
        model_args, tokenizer, objective.with_nsp, data_args.max_seq_length,
        sparse_prediction=objective.sparse_prediction, isolate_documents=objective.isolate_documents,
    )
    has_eval = "validation" in sequences
    trainer = PretrainingTrainer(
        model=model,
        args=training_args_for_trainer(training_args, count_tokens=True),
        train_dataset=sequences["train"],
        eval_dataset=sequences["validation"] if has_eval else None,
        data_collator=masked_lm_collator(tokenizer, objective, training_args.seed),
        processing_class=tokenizer,
        compute_metrics=compute_pretraining_metrics if has_eval else None,
        preprocess_logits_for_metrics=preprocess_logits_for_metrics if has_eval else None,
        callbacks=[TimeBudgetCallback(objective.max_train_minutes)] if objective.max_train_minutes else None,
        on_nonfinite_loss=objective.on_nonfinite_loss,
        sequence_log=os.path.join(training_args.output_dir, "sequence_ids") if objective.log_sequence_ids else None,
    )
    metrics = train_and_evaluate(trainer, checkpoint)
    trainer.save_model()

    if trainer.is_world_process_zero():
        write_pretraining_card(
            training_args.output_dir, model=model, trainer=trainer,
            objective="masked LM + next-sentence prediction" if objective.with_nsp else "masked LM",
            objective_rows=masking_rows(objective), data_args=data_args, corpus=data.corpus_description,
            tokenizer=data.tokenizer_description,
            n_documents=len(data.documents["train"]), n_sequences=len(sequences["train"]), metrics=metrics,
            tags=["fill-mask", "pretraining"], pipeline_tag="fill-mask",
        )
        if repo_id:
            push_folder(training_args.output_dir, repo_id, training_args.hub_token, "Pretrained with hf_pretrain")
    logger.info("model, tokenizer and model card saved to %s", os.path.abspath(training_args.output_dir))
    finish(trainer)


if __name__ == "__main__":
    main()

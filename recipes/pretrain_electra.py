"""Pretrain ELECTRA (replaced-token detection) from raw text with the stock Trainer.

    accelerate launch recipes/pretrain_electra.py --config recipes/configs/electra_debug.yaml [--flag value ...]

Writes the discriminator to --output_dir as a standard ElectraForPreTraining checkpoint (what `make finetune-glue`
fine-tunes) and the generator beside it in <output_dir>/generator as an ElectraForMaskedLM checkpoint.
"""

from __future__ import annotations

import logging
import os

from transformers import TrainingArguments, set_seed

from hf_pretrain.arguments import DataArguments, ElectraArguments, ModelArguments, PretrainingArguments
from hf_pretrain.config import parse_config
from hf_pretrain.electra import ReplacedTokenMetrics, build_electra
from hf_pretrain.errors import HfPretrainError, cli_entry
from hf_pretrain.hub import prepare_push, push_folder
from hf_pretrain.model_card import masking_rows, write_pretraining_card
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

logger = logging.getLogger("pretrain_electra")


@cli_entry
def main() -> None:
    model_args, electra_args, data_args, objective, training_args = parse_config(
        (ModelArguments, ElectraArguments, DataArguments, PretrainingArguments, TrainingArguments)
    )
    configure_logging(training_args)
    if objective.with_nsp:
        raise HfPretrainError("ELECTRA trains on packed sequences without NSP: set --objective mlm")
    if model_args.model_name_or_path:
        raise HfPretrainError("pretrain_electra.py trains from scratch; --model_name_or_path is not supported")

    repo_id = prepare_push(training_args)  # before any work, so an unreachable Hub fails the run at once
    checkpoint = resume_checkpoint(training_args)
    set_seed(training_args.seed)

    data = prepare_pretraining_data(model_args, data_args, objective, training_args, checkpoint)
    tokenizer, sequences = data.tokenizer, data.sequences
    model = build_electra(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, hidden_size=model_args.hidden_size,
        num_hidden_layers=model_args.num_hidden_layers, num_attention_heads=model_args.num_attention_heads,
        intermediate_size=model_args.intermediate_size, embedding_size=electra_args.embedding_size,
        generator_size=electra_args.generator_size, max_position_embeddings=model_args.max_position_embeddings,
        hidden_dropout_prob=model_args.hidden_dropout_prob,
        attention_probs_dropout_prob=model_args.attention_probs_dropout_prob,
        discriminator_weight=electra_args.discriminator_weight, sparse_prediction=objective.sparse_prediction,
        seed=training_args.seed,
    )
    has_eval = "validation" in sequences
    trainer = PretrainingTrainer(
        model=model,
        # Evaluation reports the losses and the counted metrics; the outputs themselves are not gathered.
        args=training_args_for_trainer(training_args, count_tokens=True, prediction_loss_only=True),
        train_dataset=sequences["train"],
        eval_dataset=sequences["validation"] if has_eval else None,
        data_collator=masked_lm_collator(tokenizer, objective, training_args.seed),
        processing_class=tokenizer,
        step_metrics=ReplacedTokenMetrics(),
        callbacks=[TimeBudgetCallback(objective.max_train_minutes)] if objective.max_train_minutes else None,
        on_nonfinite_loss=objective.on_nonfinite_loss,
        sequence_log=os.path.join(training_args.output_dir, "sequence_ids") if objective.log_sequence_ids else None,
    )
    metrics = train_and_evaluate(trainer, checkpoint)

    if trainer.is_world_process_zero():
        output_dir = training_args.output_dir
        generator_dir = os.path.join(output_dir, "generator")
        model.discriminator.save_pretrained(output_dir)
        model.generator.save_pretrained(generator_dir)
        tokenizer.save_pretrained(output_dir)
        tokenizer.save_pretrained(generator_dir)
        generator = model.generator.config
        write_pretraining_card(
            output_dir, model=model.discriminator, trainer=trainer,
            objective="ELECTRA replaced-token detection",
            objective_rows={
                **masking_rows(objective),
                "generator": f"{generator.num_hidden_layers} layers, hidden {generator.hidden_size} "
                f"({electra_args.generator_size:g} of the discriminator), in generator/",
                "loss": f"generator MLM + {electra_args.discriminator_weight:g} x discriminator",
                "shared": "token, position and type embeddings",
            },
            data_args=data_args, corpus=data.corpus_description, tokenizer=data.tokenizer_description,
            n_documents=len(data.documents["train"]), n_sequences=len(sequences["train"]), metrics=metrics,
            tags=["discriminator", "pretraining"], pipeline_tag="token-classification",
        )
        if repo_id:
            push_folder(output_dir, repo_id, training_args.hub_token, "Pretrained with hf_pretrain (ELECTRA)")
    logger.info("discriminator, generator, tokenizer and model card saved to %s", os.path.abspath(training_args.output_dir))
    finish(trainer)


if __name__ == "__main__":
    main()

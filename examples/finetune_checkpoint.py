"""Fine-tune a pretrained checkpoint on a GLUE task from Python, without the recipe.

    python examples/finetune_checkpoint.py --checkpoint outputs/debug --glue_dir ../shared/data/glue \
        --output_dir /tmp/mrpc --max_steps 20 [--adaptation linear_probe|lora]
"""

import argparse

from transformers import AutoTokenizer, TrainingArguments

from hf_pretrain import GLUE_TASKS, load_glue
from hf_pretrain.glue.arguments import GlueArguments
from hf_pretrain.glue.finetune import finetune_one_seed, tokenize_glue

parser = argparse.ArgumentParser()
parser.add_argument("--checkpoint", required=True)
parser.add_argument("--task_name", default="mrpc")
parser.add_argument("--glue_dir", required=True)
parser.add_argument("--output_dir", required=True)
parser.add_argument("--max_steps", type=int, default=-1)
parser.add_argument("--adaptation", default="full", choices=["full", "linear_probe", "lora"])
args = parser.parse_args()

task = GLUE_TASKS[args.task_name]
tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
data = tokenize_glue(load_glue(task, args.glue_dir), tokenizer, max_seq_length=128)
training_args = TrainingArguments(args.output_dir, max_steps=args.max_steps, num_train_epochs=3, learning_rate=1e-4,
                                  per_device_train_batch_size=32, report_to="none", use_cpu=True)
glue_args = GlueArguments(model_name_or_path=args.checkpoint, task_name=args.task_name, adaptation=args.adaptation)
_, metrics = finetune_one_seed(task, data, tokenizer, glue_args, training_args, seed=1)
print(metrics)

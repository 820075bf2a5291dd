"""Use hf_pretrain's dynamic MLM collator in your own Trainer setup, on your own texts.

    python examples/collator_in_your_trainer.py --output_dir /tmp/my-mlm --max_steps 20
"""

import argparse

from datasets import Dataset
from transformers import BertConfig, BertForMaskedLM, Trainer, TrainingArguments

from hf_pretrain import DataCollatorForMaskedLM, MaskingConfig, stdlib_docstrings, train_wordpiece_tokenizer

parser = argparse.ArgumentParser()
parser.add_argument("--output_dir", required=True)
parser.add_argument("--max_steps", type=int, default=20)
args = parser.parse_args()

texts = stdlib_docstrings()["text"]  # stand-in for your corpus: any list of strings
tokenizer = train_wordpiece_tokenizer(texts, vocab_size=3000)
train = Dataset.from_dict({"text": texts}).map(
    lambda batch: tokenizer(batch["text"], truncation=True, max_length=64), batched=True, remove_columns=["text"]
)
model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                                   num_attention_heads=2, intermediate_size=128))
trainer = Trainer(
    model=model,
    args=TrainingArguments(args.output_dir, max_steps=args.max_steps, per_device_train_batch_size=16,
                           learning_rate=1e-3, logging_steps=5, report_to="none", use_cpu=True),
    train_dataset=train,
    # 15 % of tokens selected, 80/10/10 mask/random/keep, new masks every epoch, reproducible from the seed.
    data_collator=DataCollatorForMaskedLM(tokenizer, MaskingConfig(mlm_probability=0.15), seed=0),
)
result = trainer.train()
trainer.save_model()
print(f"final training loss {result.training_loss:.3f}")

"""Reading raw text, sentences, the tokenizer, sequences and pairs: knows nothing of models or training."""

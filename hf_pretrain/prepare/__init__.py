"""Corpus preparation: cleaning, quality filters, deduplication and the pipeline of `hf-pretrain prepare`."""

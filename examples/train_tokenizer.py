"""Train a BERT WordPiece tokenizer on your own files (any format hf_pretrain reads) and save it.

    python examples/train_tokenizer.py --train_file 'data/*.txt.gz' --vocab_size 8000 --output_dir my-tokenizer
"""

import argparse

from hf_pretrain import load_documents, train_wordpiece_tokenizer

parser = argparse.ArgumentParser()
parser.add_argument("--train_file", nargs="+", required=True, help="files, globs or directories")
parser.add_argument("--vocab_size", type=int, default=30522)
parser.add_argument("--output_dir", required=True)
args = parser.parse_args()

documents = load_documents(args.train_file)
tokenizer = train_wordpiece_tokenizer(documents["text"], vocab_size=args.vocab_size)
tokenizer.save_pretrained(args.output_dir)
print(f"{len(tokenizer)} tokens from {len(documents)} documents; example: {tokenizer.tokenize(documents[0]['text'][:80])}")

"""The ``hf-pretrain`` command: ``hf-pretrain prepare --train_file FILE [FILE ...] --output_dir DIR [flags]``."""

from __future__ import annotations

import logging
import sys

from .config import parse_config
from .errors import HfPretrainError, cli_entry
from .prepare.arguments import PrepareArguments
from .prepare.cleaning import QualityFilters
from .prepare.pipeline import prepare_corpus

COMMANDS = ("prepare",)


@cli_entry
def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        raise HfPretrainError(f"usage: hf-pretrain {{{','.join(COMMANDS)}}} [flags]; hf-pretrain prepare --help lists them")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args, filters = parse_config((PrepareArguments, QualityFilters), sys.argv[2:])
    report = prepare_corpus(args, filters)
    counts = {stage["stage"]: stage.get("documents") for stage in report["stages"]}
    print(f"prepared {args.output_dir}: documents per stage {counts}; splits {report['splits']}; "
          f"report in {args.output_dir}/report.md")

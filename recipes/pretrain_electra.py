"""Pretrain ELECTRA (replaced-token detection) from raw text: ``recipes/pretrain_bert.py --objective electra``.

    accelerate launch recipes/pretrain_electra.py --config recipes/configs/electra_debug.yaml [--flag value ...]

Writes the discriminator to --output_dir as a standard ElectraForPreTraining checkpoint (what `make finetune-glue`
fine-tunes) and the generator beside it in <output_dir>/generator as an ElectraForMaskedLM checkpoint.
It also trains --objective electra_match (ELECTRA with token matching on sentence pairs: electra_budget_match.yaml).
"""

from pretrain_bert import main

from hf_pretrain.errors import cli_entry

if __name__ == "__main__":
    cli_entry(main)(required_objective=("electra", "electra_match"))

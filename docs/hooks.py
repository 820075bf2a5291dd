"""MkDocs hooks: the flag reference is generated from the argument dataclasses (never written by hand), and the
benchmark figures are served from benchmarks/results/, where the benchmarks write them."""

from __future__ import annotations

import os

from mkdocs.structure.files import File, Files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def on_files(files: Files, config) -> Files:
    from hf_pretrain.flags import flag_reference
    from hf_pretrain.objectives import objective_names

    pages = ["# Flags by objective", "",
             "Each objective's flags, generated from the argument classes' help by `hf-pretrain flags --objective "
             "NAME` (which prints one of these). A flag of another objective is refused in one line.", ""]
    pages += [_nested(flag_reference(name)) for name in objective_names()]
    files.append(File.generated(config, "flags.md", content="\n".join(pages)))
    results = os.path.join(ROOT, "benchmarks", "results")
    for name in sorted(os.listdir(results)):
        if name.endswith(".png"):
            files.append(File(f"results/{name}", src_dir=os.path.join(ROOT, "benchmarks"), dest_dir=config["site_dir"],
                              use_directory_urls=config["use_directory_urls"]))
    return files


def _nested(reference: str) -> str:
    """One objective's reference as a section of the page: its headings one level down."""
    return "\n".join("#" + line if line.startswith("#") else line for line in reference.split("\n"))

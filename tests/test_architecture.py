"""The package's layering (``.importlinter``) holds: a layer imports only from the layers below it, GLUE knows
nothing of pretraining, objectives nothing of the Trainer glue, and the recipes only the package's public modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.unit


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"  # the environment's own, as `make install` puts it
    assert lint_imports.is_file(), "import-linter is not installed: pip install -e '.[dev]'"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 kept, 0 broken" in result.stdout


def test_no_import_is_hidden_in_a_function():
    """An import inside a function hides a cycle from the contracts (training/data.py and training/streaming.py once
    imported each other that way). Only the command line defers imports, to start fast."""
    hidden = []
    for path in sorted((ROOT / "hf_pretrain").rglob("*.py")):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                hidden += [f"{path.relative_to(ROOT)}:{i.lineno}" for i in ast.walk(node)
                           if isinstance(i, ast.ImportFrom) and (i.level > 0 or (i.module or "").startswith("hf_pretrain"))]
    assert hidden == []


def test_nothing_imports_a_recipe():
    for path in [*ROOT.joinpath("hf_pretrain").rglob("*.py"), *ROOT.joinpath("tests").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(name.split(".")[0] in {"recipes", "pretrain_bert", "finetune_glue"} for name in names), path


def test_a_new_objective_is_one_registered_module():
    """The registry is the only place a name is looked up: registering a class makes it a valid --objective."""
    from hf_pretrain import PretrainingArguments, objective_names
    from hf_pretrain.errors import HfPretrainError
    from hf_pretrain.objectives import registry
    from hf_pretrain.objectives.mlm import MaskedLanguageModeling

    with pytest.raises(HfPretrainError) as refused:
        PretrainingArguments(objective="toy")
    assert str(refused.value) == f"--objective must be one of {', '.join(sorted(objective_names()))}, not 'toy'"
    # Discovered: every module of the objectives package registers what it defines, with no list to edit.
    import importlib
    import pkgutil

    import hf_pretrain.objectives as package

    registered = {cls.__module__ for cls in registry.objective_classes()}
    for module in pkgutil.iter_modules(package.__path__):
        defined = vars(importlib.import_module(f"{package.__name__}.{module.name}")).values()
        objectives = [c for c in defined if isinstance(c, type) and getattr(c, "__module__", "") == f"{package.__name__}.{module.name}"
                      and getattr(c, "name", None) and "name" in vars(c)]
        assert all(c.name in objective_names() for c in objectives), module.name
    assert {"mlm", "mlm_nsp", "electra", "clm", "contrastive"} <= set(objective_names()) and len(registered) >= 7

    class Toy(MaskedLanguageModeling):
        name = "toy"

    registry.register_objective(Toy)
    try:
        assert "toy" in objective_names()
        assert PretrainingArguments(objective="toy").objective == "toy"
        with pytest.raises(ValueError, match="already registered"):
            registry.register_objective(Toy)
    finally:
        registry._OBJECTIVES.pop("toy")

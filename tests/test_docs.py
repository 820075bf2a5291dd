"""The documentation: the site builds with ``mkdocs build --strict`` (a broken link, a missing page or a page left
out of the navigation fails), its flag reference is generated from the argument classes, and the README stays a
short entry point whose every link leads somewhere that exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.component

README_LINES = 250


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).parent / "mkdocs"
    assert mkdocs.is_file(), "mkdocs is not installed: pip install -e '.[dev]'"
    result = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(out)], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_the_site_builds_strictly_with_every_page(site):
    for page in ("pretraining", "objectives", "flags", "data", "finetuning", "reliability", "library", "testing",
                 "results"):
        assert (site / page / "index.html").is_file(), page
    assert (site / "results" / "bench_quality_curves.png").stat().st_size > 1000  # the figures come along
    assert not (site / "hooks.py").exists()


def test_the_flag_page_is_generated_for_every_objective(site):
    from hf_pretrain.objectives import objective_names

    page = (site / "flags" / "index.html").read_text()
    for name in objective_names():
        assert f"Flags of <code>pretrain_bert.py --objective {name}</code>" in page, name
    assert "--generator_size" in page and "--max_nonfinite_skips" in page


def test_the_readme_is_short_and_its_links_lead_somewhere(site):
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_LINES
    for target in re.findall(r"\]\(([^)]+)\)", readme):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        if not path:  # a section of the README itself
            headings = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", readme,
                                                                                                   re.M)}
            assert anchor in headings, target
            continue
        assert (ROOT / path).is_file(), target
        if anchor:  # the id mkdocs gives the heading, on the built page
            page = site / Path(path).relative_to("docs").with_suffix("") / "index.html"
            assert f'id="{anchor}"' in page.read_text(), target

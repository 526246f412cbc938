"""The README stays short and the reference lives on the docs site (`make docs`; `make test` builds it with
--strict, so a broken link fails): every page is in the site's nav, and every benchmark's table has one home."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))


def test_the_readme_is_short_and_points_at_every_page():
    readme = (ROOT / "README.md").read_text()
    assert readme.count("\n") <= 250
    for command in ("make serve", "make test", "make docs"):
        assert command in readme
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", readme))
    pages = {p.name for p in (ROOT / "docs").glob("*.md") if p.name != "changelog.md"}
    assert pages == linked, pages ^ linked


def test_every_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python", "#"))

    def files(nav):
        for item in nav:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            yield from files(value) if isinstance(value, list) else [value]

    assert set(files(config["nav"])) == {p.name for p in (ROOT / "docs").glob("*.md")}


def test_each_benchmark_table_has_one_home_and_is_rewritten_there(tmp_path):
    from readme_section import replace_section

    markers = {}
    for page in (ROOT / "docs").glob("*.md"):
        for name in re.findall(r"<!-- ([\w-]+):start -->", page.read_text()):
            assert name not in markers, (name, page, markers.get(name))
            markers[name] = page.name
    assert {"benchmark", "streaming", "serving", "memory", "audio-in", "lipsync", "images"} <= set(markers)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n")
    (docs / "b.md").write_text("x\n<!-- t:start -->\nold\n<!-- t:end -->\ny\n")
    replace_section(docs, "t", "new")
    assert (docs / "b.md").read_text() == "x\n<!-- t:start -->\nnew\n<!-- t:end -->\ny\n"
    with pytest.raises(ValueError, match="nope"):
        replace_section(docs, "nope", "x")

"""Rewrite one marked section of the docs (the benchmarks keep their tables there)."""

from __future__ import annotations

from pathlib import Path


def replace_section(readme: Path, name: str, body: str) -> None:
    """Replace the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`, in `readme`, or, when `readme` is a
    folder (the docs site's `docs/`), in whichever of its pages holds the markers."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    pages = sorted(Path(readme).glob("**/*.md")) if Path(readme).is_dir() else [Path(readme)]
    for page in pages:
        text = page.read_text()
        if start in text and end in text:
            a, b = text.index(start) + len(start), text.index(end)
            page.write_text(text[:a] + "\n" + body + "\n" + text[b:])
            return
    raise ValueError(f"no page under {readme} has the markers of {name!r}")

"""Rewrite one marked section of the README (the benchmarks keep their tables there)."""

from __future__ import annotations

from pathlib import Path


def replace_section(readme: Path, name: str, body: str) -> None:
    """Replace the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = readme.read_text()
    a, b = text.index(start) + len(start), text.index(end)
    readme.write_text(text[:a] + "\n" + body + "\n" + text[b:])

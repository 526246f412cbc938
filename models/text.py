"""Text checks and clean-up before synthesis: normalisation, limits, sentence splitting, language codes."""

from __future__ import annotations

import re
import unicodedata

from models.errors import InvalidInput

LANGUAGE_ALIASES = {
    "zh": "zh-cn", "zh-hans": "zh-cn", "zh-cn": "zh-cn", "cmn": "zh-cn", "zh-cmn": "zh-cn",
    "en-us": "en", "en-gb": "en", "en": "en", "es-es": "es", "es-mx": "es", "es-419": "es", "es": "es",
}  # fmt: skip
ABBREVIATIONS = {
    "mr.",
    "mrs.",
    "ms.",
    "dr.",
    "prof.",
    "sr.",
    "jr.",
    "st.",
    "vs.",
    "etc.",
    "e.g.",
    "i.e.",
    "no.",
    "fig.",
}
_SPLIT = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|(?<=[。！？])")


def normalize_text(text: str, max_chars: int) -> str:
    """NFC, whitespace collapsed, length checked."""
    if not isinstance(text, str):
        raise InvalidInput("text must be a string", field="text")
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()
    if not text:
        raise InvalidInput("text is empty", allowed=f"1 to {max_chars} characters", field="text")
    if len(text) > max_chars:
        raise InvalidInput(
            f"text is longer than {max_chars} characters ({len(text)})", allowed=f"at most {max_chars}", field="text"
        )
    return text


def split_sentences(text: str) -> list[str]:
    """Sentences, keeping abbreviations (Dr., e.g.) and decimals (3.5) intact; also splits on 。！？."""
    out: list[str] = []
    for piece in (p.strip() for p in _SPLIT.split(text)):
        if not piece:
            continue
        if out and out[-1].rsplit(" ", 1)[-1].lower() in ABBREVIATIONS:
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def normalize_language(code: str) -> str:
    """Lower-case, '_' -> '-', common aliases folded (zh -> zh-cn, en-US -> en)."""
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput("language is empty", field="language")
    c = code.strip().lower().replace("_", "-")
    return LANGUAGE_ALIASES.get(c, c)

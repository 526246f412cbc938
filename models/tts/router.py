"""Routes each request to the engine that speaks its language (and owns its voice)."""

from __future__ import annotations

from collections.abc import Iterator

from models.errors import NotFound, UnsupportedLanguage
from models.text import normalize_language
from models.tts.base import SpeechChunk, SynthesisOptions, TTSEngine, VoiceInfo


class RoutedEngine:
    """One engine per language for the default voice; other voices go to the engine that owns them."""

    name = "auto"

    def __init__(self, routes: dict[str, TTSEngine]):
        self.routes = {normalize_language(lang): engine for lang, engine in routes.items()}
        self.languages = tuple(self.routes)
        self.engines = list({id(e): e for e in self.routes.values()}.values())
        self.sample_rate = self.engines[0].sample_rate
        self.can_clone = any(e.can_clone for e in self.engines)

    def voices(self) -> list[VoiceInfo]:
        default = VoiceInfo("default", "+".join(e.name for e in self.engines), self.languages)
        others = [v for e in self.engines for v in e.voices() if v.id != "default"]
        return [default, *others]

    def engine_for(self, language: str, voice: str | None) -> TTSEngine:
        lang = normalize_language(language)
        if voice in (None, "", "default"):
            if lang not in self.routes:
                raise UnsupportedLanguage(
                    f"language {language!r} is not supported", allowed=list(self.languages), field="language"
                )
            return self.routes[lang]
        info = {v.id: (v, e) for e in self.engines for v in e.voices()}
        if voice not in info:
            raise NotFound(f"unknown voice {voice!r}", allowed=sorted(info), field="voice")
        v, engine = info[voice]
        if lang not in v.languages:
            raise UnsupportedLanguage(
                f"voice {voice!r} does not speak {language!r}", allowed=list(v.languages), field="language"
            )
        return engine

    def synthesize_stream(self, text: str, language: str = "en", voice: str | None = None,
                          options: SynthesisOptions | None = None) -> Iterator[SpeechChunk]:  # fmt: skip
        return self.engine_for(language, voice).synthesize_stream(text, language, voice, options)

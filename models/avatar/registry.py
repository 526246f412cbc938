"""Renderer registry: name -> factory. Factories import their renderer (and its heavy packages) when called, so
the registry imports none of its members and stays cheap to import (as models/tts/registry.py does for TTS)."""

from __future__ import annotations

from typing import Any

from models.avatar.base import Renderer
from models.registry import Registry

RENDERERS: Registry[Renderer] = Registry("renderer", "renderer")
register_renderer = RENDERERS.register
available_renderers = RENDERERS.names
create_renderer = RENDERERS.create


@register_renderer("portrait")
def _portrait(**kwargs: Any) -> Renderer:
    from models.avatar.portrait import PortraitRenderer

    return PortraitRenderer(**kwargs)

"""A self-hosted talking face for Pipecat voice agents: the realtime-avatar server's live audio socket as a
FrameProcessor placed after the TTS."""

from realtime_avatar_pipecat.video import RealtimeAvatarVideoService

__all__ = ["RealtimeAvatarVideoService"]
__version__ = "0.1.0"

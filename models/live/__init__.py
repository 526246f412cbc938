"""Hands-free conversation: voice activity (Silero VAD), end-of-turn detection and barge-in, without a server."""

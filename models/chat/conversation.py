"""Conversations: a system prompt plus the recent exchanges, bounded in turns and characters, and a store of
them per session (bounded too, idle ones expire)."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from models.errors import NotFound
from models.text import normalize_language, normalize_text

INTERRUPTED_EARLY = "…"  # the reply the history keeps when the user interrupted before any of it was heard
# For the instruction that makes the reply follow the language the user spoke (codes as normalize_language gives)
LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "zh-cn": "Mandarin Chinese (simplified characters)", "fr": "French",
    "de": "German", "it": "Italian", "pt": "Portuguese", "nl": "Dutch", "pl": "Polish", "ru": "Russian",
    "tr": "Turkish", "ar": "Arabic", "ja": "Japanese", "ko": "Korean", "hi": "Hindi", "cs": "Czech", "hu": "Hungarian",
}  # fmt: skip


@dataclass(frozen=True)
class Turn:
    user: str
    assistant: str

    @property
    def chars(self) -> int:
        return len(self.user) + len(self.assistant)


@dataclass
class Conversation:
    """One session's memory. `reply()` streams the answer to a user message and remembers the exchange."""

    system_prompt: str = ""
    max_turns: int = 8
    max_chars: int = 8000
    max_user_chars: int = 2000
    persona: str | None = None  # id of the persona speaking, for the caller's voice and avatar choice
    greeting: str = ""  # what the avatar said first: the model sees it as its own opening line
    turns: list[Turn] = field(default_factory=list)
    last_used: float = field(default_factory=time.monotonic)
    _heard: dict[str, str] = field(default_factory=dict, repr=False)  # interrupted replies: what was heard

    @classmethod
    def for_persona(cls, persona, llm) -> Conversation:
        """A new conversation with a `Persona`, bounded by `LLMSettings`."""
        return cls(
            system_prompt=persona.system_prompt, max_turns=llm.max_history_turns, max_chars=llm.max_history_chars,
            max_user_chars=llm.max_user_chars, persona=persona.id, greeting=persona.greeting,
        )  # fmt: skip

    def messages(self, user_text: str, language: str | None = None) -> list[dict]:
        """The request for the next reply: system prompt (plus "answer in <language>" when known), history, user."""
        system = self.system_prompt.strip()
        if language:
            name = LANGUAGE_NAMES.get(normalize_language(language), language)
            system = f"{system}\n\nThe user is speaking {name}: answer in {name}.".strip()
        out = [{"role": "system", "content": system}] if system else []
        if self.greeting:
            out.append({"role": "assistant", "content": self.greeting})
        for turn in self.turns:
            out += [{"role": "user", "content": turn.user}, {"role": "assistant", "content": turn.assistant}]
        return out + [{"role": "user", "content": user_text}]

    def remember(self, user_text: str, reply: str) -> None:
        """Add an exchange, then drop the oldest ones until both bounds hold."""
        reply = self._heard.pop(user_text, reply)
        self.turns.append(Turn(user_text, reply.strip()))
        while self.turns and (len(self.turns) > self.max_turns or sum(t.chars for t in self.turns) > self.max_chars):
            self.turns.pop(0)

    def heard_only(self, user_text: str, spoken: str) -> None:
        """The user talked over the reply to `user_text`: remember what they heard of it (`spoken`), not what the
        model wrote. The reply may already be remembered (its stream closed first) or not yet."""
        user_text = normalize_text(user_text, self.max_user_chars)
        spoken = spoken.strip() or INTERRUPTED_EARLY
        if self.turns and self.turns[-1].user == user_text:
            self.turns[-1] = Turn(user_text, spoken)
        else:
            self._heard[user_text] = spoken

    def reply(self, client, user_text: str, language: str | None = None, stats=None) -> Iterator[str]:
        """Text deltas of the answer (from a `ChatClient`). The exchange is remembered once the reply ends, or
        with what was said so far when the reader stops early (the user interrupted: the model should know
        what it did say); a failed reply leaves the history as it was."""
        user_text = normalize_text(user_text, self.max_user_chars)
        messages = self.messages(user_text, language)
        said: list[str] = []
        failed = False
        self.last_used = time.monotonic()
        try:
            with contextlib.closing(client.stream(messages, stats)) as deltas:  # closes the HTTP stream early too
                for delta in deltas:
                    said.append(delta)
                    yield delta
        except Exception:
            failed = True
            raise
        finally:
            if not failed and "".join(said).strip():
                self.remember(user_text, "".join(said))


class ConversationStore:
    """Conversations by session id, in memory (one API worker): at most `max_sessions` (the least recently
    used goes first), and any idle for `ttl_s` forgotten. Thread-safe."""

    def __init__(self, max_sessions: int = 1000, ttl_s: float = 3600):
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self._items: OrderedDict[str, Conversation] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, conversation: Conversation) -> str:
        session = uuid.uuid4().hex
        with self._lock:
            self._expire()
            self._items[session] = conversation
            while len(self._items) > self.max_sessions:
                self._items.popitem(last=False)
        return session

    def get(self, session: str) -> Conversation:
        with self._lock:
            self._expire()
            conversation = self._items.get(session)
            if conversation is None:
                raise NotFound(f"no conversation {session!r} (it may have expired)", field="session")
            self._items.move_to_end(session)
            conversation.last_used = time.monotonic()
            return conversation

    def delete(self, session: str) -> None:
        with self._lock:
            if self._items.pop(session, None) is None:
                raise NotFound(f"no conversation {session!r}", field="session")

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._items)

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.ttl_s
        for session in [s for s, c in self._items.items() if c.last_used < cutoff]:
            del self._items[session]

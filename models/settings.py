"""One typed settings object: configs/default.yaml, then a profile, then a file, then environment variables.

The profile of the device in use (configs/cpu.yaml, mps.yaml or cuda.yaml; with `device: auto`, the default, the
one found) goes between default.yaml and everything set explicitly, so a CPU machine runs with CPU settings
unless told otherwise.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.errors import InvalidInput

# The voice names of OpenAI's speech API; /v1/audio/speech maps each to a voice of ours (tts.openai_voices).
OPENAI_VOICES = frozenset(
    ["alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage", "shimmer", "verse"]
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TTSSettings(_Section):
    engine: str = "auto"
    routes: dict[str, str] = {"en": "piper", "es": "espeak", "zh-cn": "espeak"}  # language -> engine for "auto"
    voice_path: str | None = None
    clone: bool = True  # load XTTS for cloned voices when its weights are in the model store
    xtts_model: str = "xtts-v2:latest"  # BentoML model-store tag
    max_chars: int = 2000
    intra_op_threads: int = 2
    # Piper's randomness (None: the voice's own); 0 and 0 make the same text give the same samples every time
    noise_scale: float | None = Field(None, ge=0, le=2)
    noise_w_scale: float | None = Field(None, ge=0, le=2)
    openai_voices: dict[str, str] = {}  # OpenAI voice name -> our voice id; unlisted OpenAI names: "default"

    def voice_for_openai(self, name: str) -> str:
        """Our voice id for the `voice` of an OpenAI speech request (our own ids pass through)."""
        return self.openai_voices.get(name) or ("default" if name in OPENAI_VOICES else name)


def tts_engine_kwargs(settings: Settings, device: str = "cpu") -> dict:
    """Constructor arguments of the configured engine (the router passes each engine its own)."""
    from models.model_store import find_model, require_model

    s = settings.tts
    voices = settings.storage.root / "voices"
    per_engine: dict = {"piper": {"model_path": s.voice_path, "intra_op_threads": s.intra_op_threads}}
    if s.engine == "xtts":
        hint = "import it with scripts/import_models.py xtts --from DIR"
        per_engine["xtts"] = {"model_dir": require_model(s.xtts_model, hint), "voices_dir": voices, "device": device}
    if s.engine != "auto":
        return per_engine.get(s.engine, {})
    found = find_model(s.xtts_model) if s.clone else None
    cloner = {"model_dir": found, "voices_dir": voices, "device": device} if found else None
    return {"routes": s.routes, "engine_kwargs": per_engine, "cloner": cloner}


class AvatarSettings(_Section):
    renderer: str = "portrait"
    image: str | None = None
    size: int = 512
    fps: float = 25
    backend: str = "auto"
    render_threads: int = 2


class VideoSettings(_Section):
    preset: str = "veryfast"
    crf: int = 23
    x264_params: str = ""


class StorageSettings(_Section):
    data_dir: str = "~/.cache/realtime-avatar"
    max_age_hours: float = 24
    max_total_mb: float = 2048

    @property
    def root(self) -> Path:
        return Path(os.path.expandvars(self.data_dir)).expanduser()


class ServingSettings(_Section):
    """BentoML services: batching, traffic limits and remote dependencies."""

    tts_url: str | None = None  # call a TTS service elsewhere instead of starting one
    render_url: str | None = None  # same for the avatar service
    batching: bool = True  # off: the API calls the non-batched endpoints (for comparison)
    tts_max_batch_size: int = 8
    tts_max_latency_ms: int = 5000
    render_max_batch_size: int = 8
    render_max_latency_ms: int = 20000
    triton_queue_delay_us: int = 2000  # Triton's dynamic batcher: how long a request waits for others (services_triton)
    max_concurrency: int = 64  # requests in flight per API worker before 429
    timeout_s: int = 300
    max_upload_mb: float = 10
    api_keys: list[str] = []  # when set, data routes need one of them (services/auth.py); env AVATAR_API_KEYS=a,b
    stream_ahead_s: float = 2.0  # with several live streams, none renders further ahead of its playback than this
    allowed_origins: list[str] = []  # pages that may open the sockets beyond the server's own and localhost
    #                                  (services/origins.py); "*" = any. Env AVATAR_ALLOWED_ORIGINS=a,b

    @field_validator("api_keys", "allowed_origins", mode="before")
    @classmethod
    def _comma_list(cls, value):
        """AVATAR_API_KEYS=key1,key2 (an environment variable is one string); blanks are dropped."""
        return [k.strip() for k in value.split(",") if k.strip()] if isinstance(value, str) else value


class ASRSettings(_Section):
    """Speech recognition (Whisper on CTranslate2)."""

    model: str = "whisper:latest"  # BentoML model-store tag, filled by scripts/import_models.py whisper
    compute_type: str = "auto"  # CTranslate2 type: auto (int8 on CPU, float16 on CUDA), int8, float16, float32
    cpu_threads: int = 2
    beam_size: int = 1  # greedy: conversation turns are short and latency counts
    vad: bool = True  # drop silence first (Silero VAD, bundled with faster-whisper)
    max_audio_s: float = 60  # longest clip accepted


class AudioInSettings(_Section):
    """Audio in: a client's speech drives the face (/api/v1/animate, its stream and live socket; avatar animate)."""

    max_audio_s: float = 300  # longest clip accepted (read from the file's header before decoding)
    max_concurrent: int = 4  # audio uploads decoded at once per API worker (animate, transcriptions);
    #                                       more get 429: each holds up to max_audio_s of samples (~110 MB)
    live_lookahead_s: float = 0.32  # live socket: audio held before a piece is animated (the mouth's look-ahead)
    live_lead_s: float = 0.4  # live socket: at most this much video sent ahead of real time (what an interrupt
    #                           cannot take back from a player that does not drop its buffer)
    live_idle_timeout_s: float = 600  # live socket: closed after this long with no message at all


class LLMSettings(_Section):
    """The chat model: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server, LM Studio...)."""

    base_url: str | None = None  # e.g. http://localhost:11434/v1; null = conversation disabled
    model: str | None = None  # the endpoint's model name
    api_key: str | None = None  # sent as Authorization: Bearer; env AVATAR_LLM_API_KEY
    temperature: float = 0.7
    max_tokens: int = 300  # per reply: spoken answers stay short
    connect_timeout_s: float = 5
    read_timeout_s: float = 30  # longest wait for the first or the next token
    total_timeout_s: float = 120  # longest whole reply
    max_history_turns: int = 8  # earlier exchanges kept per conversation (oldest dropped first)
    max_history_chars: int = 8000  # ...and at most this much text of them
    max_user_chars: int = 2000  # longest accepted user message
    personas_file: str | None = None  # a personas YAML; null = the bundled configs/personas.yaml


class Settings(_Section):
    device: str = "auto"
    tts: TTSSettings = TTSSettings()
    avatar: AvatarSettings = AvatarSettings()
    video: VideoSettings = VideoSettings()
    storage: StorageSettings = StorageSettings()
    serving: ServingSettings = ServingSettings()
    asr: ASRSettings = ASRSettings()
    audio_in: AudioInSettings = AudioInSettings()
    llm: LLMSettings = LLMSettings()


# short environment names for the settings people change most
ENV_SHORTCUTS = {
    "AVATAR_DEVICE": ("device",),
    "AVATAR_TTS_ENGINE": ("tts", "engine"),
    "AVATAR_DATA_DIR": ("storage", "data_dir"),
    "AVATAR_SIZE": ("avatar", "size"),
    "AVATAR_FPS": ("avatar", "fps"),
    "AVATAR_TTS_URL": ("serving", "tts_url"),
    "AVATAR_RENDER_URL": ("serving", "render_url"),
    "AVATAR_API_KEYS": ("serving", "api_keys"),
    "AVATAR_ALLOWED_ORIGINS": ("serving", "allowed_origins"),
    "AVATAR_LLM_BASE_URL": ("llm", "base_url"),
    "AVATAR_LLM_MODEL": ("llm", "model"),
    "AVATAR_LLM_API_KEY": ("llm", "api_key"),
}


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(text: str, origin: str) -> dict:
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise InvalidInput(f"{origin} must hold a mapping of settings")
    return data


def _profile(name: str) -> dict:
    path = resources.files("configs") / f"{name}.yaml"
    if not path.is_file():
        allowed = sorted(p.name[:-5] for p in resources.files("configs").iterdir() if p.name.endswith(".yaml"))
        raise InvalidInput(f"unknown settings profile {name!r}", allowed=allowed, field="AVATAR_PROFILE")
    return _read_yaml(path.read_text(), f"profile {name}")


def _set(tree: dict, keys: tuple[str, ...], value: str) -> None:
    for k in keys[:-1]:
        tree = tree.setdefault(k, {})
    tree[keys[-1]] = yaml.safe_load(value) if value != "" else None


def _env_layer(env: dict[str, str]) -> dict:
    tree: dict = {}
    for name, keys in ENV_SHORTCUTS.items():
        if name in env:
            _set(tree, keys, env[name])
    for name, value in env.items():
        if name.startswith("AVATAR__"):
            _set(tree, tuple(name[8:].lower().split("__")), value)
    return tree


def load_settings(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Build the settings; a wrong key or value raises InvalidInput naming it."""
    env = dict(os.environ if env is None else env)
    defaults = _read_yaml((resources.files("configs") / "default.yaml").read_text(), "default.yaml")
    explicit: dict = {}
    if env.get("AVATAR_PROFILE"):
        explicit = _profile(env["AVATAR_PROFILE"])
    if env.get("AVATAR_CONFIG"):
        explicit = _merge(explicit, _read_yaml(Path(env["AVATAR_CONFIG"]).read_text(), env["AVATAR_CONFIG"]))
    explicit = _merge(_merge(explicit, _env_layer(env)), overrides or {})
    data = _merge(_merge(defaults, _device_profile(_merge(defaults, explicit))), explicit)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"bad setting {where}: {first['msg']}", field=where) from exc


def _device_profile(data: dict) -> dict:
    """The profile of the device in use: the one set, or the one `auto` finds (cpu, mps or cuda)."""
    from models.device import resolve_device

    device = str(data.get("device") or "auto").lower()
    name = resolve_device("auto") if device == "auto" else device.split(":")[0]
    return _profile(name) if name in ("cpu", "mps", "cuda") else {}

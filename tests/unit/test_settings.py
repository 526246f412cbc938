import pytest

from models.device import resolve_device
from models.errors import InvalidInput
from models.settings import load_settings

pytestmark = pytest.mark.unit


def test_defaults():
    s = load_settings(env={})
    assert (
        s.tts.engine == "auto"
        and s.tts.routes["es"] == "espeak"
        and s.avatar.size == 512
        and s.avatar.fps == 25
        and s.serving.tts_url is None
    )


def test_env_overrides_and_profile(tmp_path):
    env = {"AVATAR_SIZE": "256", "AVATAR_TTS_URL": "http://gpu:3001", "AVATAR__VIDEO__PRESET": "ultrafast"}
    s = load_settings(env=env | {"AVATAR_PROFILE": "cpu"})
    assert s.avatar.size == 256 and s.serving.tts_url == "http://gpu:3001" and s.video.preset == "ultrafast"
    assert s.device == "cpu" and s.serving.batching is False
    cfg = tmp_path / "my.yaml"
    cfg.write_text("avatar:\n  fps: 30\n")
    assert load_settings(env={"AVATAR_CONFIG": str(cfg)}).avatar.fps == 30


@pytest.mark.parametrize(
    "env,needle",
    [
        ({"AVATAR_SIZE": "big"}, "avatar.size"),
        ({"AVATAR__AVATAR__COLOUR": "red"}, "colour"),
        ({"AVATAR_PROFILE": "tpu"}, "profile"),
    ],
)
def test_bad_settings_name_the_problem(env, needle):
    with pytest.raises(InvalidInput, match=needle):
        load_settings(env=env)


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(InvalidInput):
        resolve_device("tpu")


@pytest.fixture
def found_device(monkeypatch):
    """Pretend `device: auto` finds the given device (deterministic on any machine)."""

    def pretend(device):
        monkeypatch.setattr("models.device.resolve_device", lambda setting="auto": device)

    return pretend


def test_auto_device_brings_its_profile(found_device):
    found_device("cpu")
    s = load_settings(env={})
    assert s.device == "cpu" and s.serving.batching is False and s.avatar.backend == "cv2"
    found_device("cuda")
    s = load_settings(env={})
    assert s.device == "cuda" and s.serving.batching is True and s.avatar.backend == "torch"


def test_anything_explicit_wins_over_the_auto_profile(found_device, tmp_path):
    found_device("cpu")
    assert load_settings(env={"AVATAR__SERVING__BATCHING": "true"}).serving.batching is True
    assert load_settings(overrides={"avatar": {"backend": "torch"}}, env={}).avatar.backend == "torch"
    s = load_settings(env={"AVATAR_PROFILE": "cuda"})  # a profile replaces the auto one (cuda has no batching key)
    assert s.device == "cuda" and s.serving.batching is True and s.avatar.backend == "torch"
    cfg = tmp_path / "my.yaml"
    cfg.write_text("serving:\n  batching: true\n")
    s = load_settings(env={"AVATAR_CONFIG": str(cfg)})
    assert s.serving.batching is True and s.avatar.backend == "cv2"  # the rest of the cpu profile still applies
    s = load_settings(env={"AVATAR_DEVICE": "cpu"})  # a device set explicitly brings its own profile
    assert s.device == "cpu" and s.serving.batching is False and s.avatar.backend == "cv2"


def test_lone_request_latency_default():
    assert load_settings(env={"AVATAR_DEVICE": "cpu"}).tts.intra_op_threads == 2


def test_auto_device_skips_torch_where_no_gpu_can_be(monkeypatch):
    import sys

    import models.device as device

    monkeypatch.setattr(device.platform, "system", lambda: "Linux")
    monkeypatch.setattr(device.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(device.os.path, "exists", lambda path: False)
    monkeypatch.setitem(sys.modules, "torch", None)  # an import of torch would raise now
    assert device.resolve_device("auto") == "cpu"
    monkeypatch.setattr(device.glob, "glob", lambda pattern: ["/dev/nvidia0"])
    assert device._may_have_gpu()  # a GPU node: torch is asked (and here, missing, says cpu)
    assert device.resolve_device("auto") == "cpu"
    monkeypatch.setattr(device.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(device.platform, "machine", lambda: "arm64")
    assert device._may_have_gpu()

"""Hands-free in a real browser: Chromium's fake microphone plays a question, a pause, and a second question that
starts while the answer plays. The page answers the first, stops it when the second starts (the transcript marks
it interrupted), and answers the second, over one WebSocket."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.browser.conftest import chromium
from tests.browser.test_demo_conversation import talk_server  # noqa: F401  (the fixture)
from tests.browser.test_demo_page import open_page, severe

pytestmark = [pytest.mark.browser, pytest.mark.integration]
REPLY = "Sure. It is sunny and warm today. Later some clouds may come over the hills, and the wind picks up."


@pytest.fixture
def conversation_wav(tmp_path) -> str:
    import soundfile as sf

    from models.tts import create_engine, synthesize

    engine = create_engine("piper")
    first = synthesize(engine, "Hello avatar, how is the weather today?")
    second = synthesize(engine, "Wait, what about tomorrow?")
    sr = first.sample_rate
    gap = np.zeros(int(5.0 * sr), np.float32)  # the end of the turn, then a few seconds of the answer
    audio = np.concatenate([np.zeros(int(0.5 * sr), np.float32), first.audio, gap, second.audio,
                            np.zeros(30 * sr, np.float32)])  # fmt: skip
    path = tmp_path / "conversation.wav"
    sf.write(path, audio, sr, subtype="PCM_16")
    return str(path)


def events(driver) -> list[dict]:
    return driver.execute_script("return window.avatarLive")


def answered(got: list[dict]) -> list[dict]:
    """The answers played to their end, after the first one (which the second question cuts)."""
    return [e for e in got if e["type"] == "done" and e.get("turn", 0) >= 2]


def test_hands_free_answers_and_stops_when_talked_over(talk_server, fake_llm, conversation_wav, tmp_path,  # noqa: F811
                                                      downloads):  # fmt: skip
    from selenium.webdriver.common.by import By

    fake_llm.mode, fake_llm.reply, fake_llm.delay_s = "stream", REPLY, 0.02
    flags = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={conversation_wav}")  # fmt: skip
    driver = chromium(tmp_path, downloads, flags)
    try:
        open_page(driver, talk_server)
        driver.find_element(By.ID, "handsfree").click()
        deadline = time.time() + 90
        while time.time() < deadline and not answered(events(driver)):
            time.sleep(0.3)
        driver.save_screenshot(str(tmp_path / "demo-handsfree.png"))
        got = events(driver)
        kinds = [e["type"] for e in got]
        assert kinds[0] == "listening" and "interrupted" in kinds, kinds
        cut = got[kinds.index("interrupted")]
        assert cut["turn"] == 1 and cut["spoken"].startswith("Sure.") and len(cut["spoken"]) < len(REPLY), cut
        assert answered(got) and answered(got)[0]["reply"] == REPLY, kinds
        # the tests' Whisper has random weights: a question it hears as no words is an error event, and the page's
        # file of audio plays again (40 s) until a later question is answered
        errors = [e for e in got if e["type"] == "error"]
        assert all("no speech was recognised" in e["message"] for e in errors), errors
        bubbles = driver.find_elements(By.CSS_SELECTOR, "#transcript li")
        texts = [b.text for b in bubbles]
        assert "cut" in bubbles[1].get_attribute("class") and REPLY in texts, texts
        played = driver.execute_script("return window.avatarStats")
        assert played["playing"] is not None and played["state"] in ("streaming", "done"), played
        assert severe(driver) == []
    finally:
        fake_llm.delay_s = 0.0
        driver.quit()


@pytest.fixture(scope="module")
def keyed_talk_server(tmp_path_factory, fake_llm, tiny_whisper):
    from services.launcher import Server
    from tests.browser.conftest import MISSING, ROOT

    if MISSING is not None:
        pytest.skip(f"browser tier skipped: {MISSING}")
    if not tiny_whisper:
        pytest.skip("speech recognition needs faster-whisper and transformers")
    tmp = tmp_path_factory.mktemp("browser-talk-keyed")
    env = {"AVATAR_DATA_DIR": str(tmp / "data"), "AVATAR_SIZE": "128", "AVATAR_PROFILE": "cpu", "AVATAR_API_KEYS": KEY,
           "AVATAR__LLM__BASE_URL": fake_llm.base_url, "AVATAR__LLM__MODEL": "fake"}  # fmt: skip
    with Server(".", env, tmp / "serve.log", cwd=ROOT) as running:
        yield running


KEY = "hands-free-key-42"


def test_hands_free_works_on_a_keyed_server(keyed_talk_server, fake_llm, conversation_wav, tmp_path, downloads):
    """A browser's WebSocket cannot send headers: the page offers its key as a subprotocol (before, every keyed
    deployment answered the hands-free socket with 403)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    fake_llm.mode, fake_llm.reply = "stream", REPLY
    flags = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={conversation_wav}")  # fmt: skip
    driver = chromium(tmp_path, downloads, flags)
    try:
        open_page(driver, keyed_talk_server)
        assert "API key" in driver.find_element(By.ID, "error").text  # the page asked for it
        driver.find_element(By.ID, "apikey").send_keys(KEY)
        driver.find_element(By.ID, "text").click()  # leaving the field stores the key and reloads the lists
        handsfree = driver.find_element(By.ID, "handsfree")
        WebDriverWait(driver, 20).until(lambda d: handsfree.is_enabled())  # the personas, read with the key
        handsfree.click()
        deadline = time.time() + 90

        def answered() -> list[dict]:
            # any turn: the first question can be heard as no words by the tests' random Whisper (an error event)
            return [e for e in events(driver) or [] if e.get("turn", 0) >= 1 and e["type"] in ("done", "interrupted")]

        while time.time() < deadline and not answered():
            time.sleep(0.3)
        driver.save_screenshot(str(tmp_path / "demo-handsfree-keyed.png"))
        kinds = [e["type"] for e in events(driver) or []]
        assert kinds and kinds[0] == "listening" and answered(), kinds
        assert severe(driver, allow=("401",)) == []
    finally:
        driver.quit()


def test_a_dropped_socket_reconnects_and_the_conversation_goes_on(talk_server, fake_llm, conversation_wav, tmp_path,  # noqa: F811
                                                                  downloads):  # fmt: skip
    """The page opens the socket again with its session id when it drops (a network, a proxy's timeout)."""
    from selenium.webdriver.common.by import By

    fake_llm.mode, fake_llm.reply = "stream", REPLY
    flags = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={conversation_wav}")  # fmt: skip
    driver = chromium(tmp_path, downloads, flags)
    try:
        open_page(driver, talk_server)
        driver.find_element(By.ID, "handsfree").click()
        deadline = time.time() + 30
        while time.time() < deadline and not any(e["type"] == "listening" for e in events(driver) or []):
            time.sleep(0.2)
        session = next(e["session"] for e in events(driver) if e["type"] == "listening")
        driver.execute_script("window.avatarDemo.liveSocket().close(4000, 'test: dropped')")
        deadline = time.time() + 90
        while time.time() < deadline:
            got = events(driver)
            kinds = [e["type"] for e in got]
            if "reconnecting" in kinds and any(e["type"] == "done" for e in got[kinds.index("reconnecting") :]):
                break
            time.sleep(0.3)
        driver.save_screenshot(str(tmp_path / "demo-handsfree-reconnect.png"))
        got = events(driver)
        kinds = [e["type"] for e in got]
        assert "reconnecting" in kinds, kinds
        after = got[kinds.index("reconnecting") :]
        assert after[1] == {**after[1], "type": "listening", "session": session}, after[:3]
        assert any(e["type"] == "done" for e in after), kinds
        assert driver.find_element(By.ID, "handsfree").is_selected()
        assert severe(driver) == []
    finally:
        driver.quit()

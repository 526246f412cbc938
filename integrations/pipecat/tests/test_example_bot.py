"""The example bot (examples/bot.py) for real: the server's Whisper, speech and face, a fake OpenAI-compatible LLM,
and headless Chromium on the bot's page with a fake microphone that asks a question. The bot answers (the LLM is
asked, the face speaks) and the avatar's video track plays in the browser (its frames advance)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import KEY, ROOT, free_port

HERE = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs chromium")


@pytest.fixture
def fake_llm():
    sys.path.insert(0, str(ROOT / "tests"))
    from fake_llm import FakeLLM  # the project's fake OpenAI-compatible chat server (standard library only)

    with FakeLLM("Hello! I am your avatar. The weather is lovely today.") as llm:
        yield llm


@pytest.fixture
def question(tmp_path) -> Path:
    """What the fake microphone says: silence, a Piper-spoken question, silence (Chromium loops the file)."""
    code = (
        "import sys, numpy as np, soundfile as sf\n"
        "from models.tts import create_engine, synthesize\n"
        "from models.media.audio import resample\n"
        "s = synthesize(create_engine('piper'), 'What is the weather like today?')\n"
        "a = resample(s.audio, s.sample_rate, 48000)\n"
        "quiet = lambda seconds: np.zeros(int(48000 * seconds), np.float32)\n"
        "sf.write(sys.argv[1], np.concatenate([quiet(2), a, quiet(8)]), 48000, subtype='PCM_16')\n"
    )
    path = tmp_path / "question.wav"
    subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", code, str(path)], cwd=ROOT, check=True)
    return path


@pytest.fixture
def bot(server, fake_llm, tmp_path):
    port = free_port()
    env = {**os.environ, "AVATAR_URL": server.url, "AVATAR_API_KEY": KEY, "AVATAR_SIZE": "256",
           "LLM_BASE_URL": fake_llm.base_url, "LLM_MODEL": "fake"}  # fmt: skip
    log = (tmp_path / "bot.log").open("wb")
    proc = subprocess.Popen([sys.executable, "examples/bot.py", "--port", str(port), "--host", "127.0.0.1"], cwd=HERE,
                            env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(20)


def test_the_bot_answers_and_its_face_plays_in_the_browser(bot, fake_llm, question, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = Options()
    options.binary_location = str(CHROMIUM)
    flags = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
             "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]  # fmt: skip
    flags += [f"--use-file-for-fake-audio-capture={question}", f"--user-data-dir={tmp_path / 'profile'}"]
    for flag in flags:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    state = "return [document.getElementById('face').videoWidth, window.botCall.frames]"

    def until(condition, seconds: float, what: str):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if condition():
                return
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}: {driver.execute_script(state)}, {fake_llm.requests}")

    try:
        driver.get(bot)
        driver.find_element(By.ID, "call").click()
        until(lambda: driver.execute_script(state)[1] > 0, 30, "the avatar's video track")
        width, before = driver.execute_script(state)
        time.sleep(2.0)
        _, after = driver.execute_script(state)
        assert width == 256 and after - before >= 30, (width, before, after)  # ~25 frames a second, advancing
        # the greeting is the LLM's first request; the question the microphone asks, heard by the server's
        # Whisper, is the second, and the face speaks its answer
        until(lambda: len(fake_llm.requests) >= 2, 60, "the bot to hear the question and ask the LLM")
        assert fake_llm.finished.wait(30)
        _, later = driver.execute_script(state)
        driver.save_screenshot(str(tmp_path / "bot.png"))
        assert later > after  # still playing after the answer
    finally:
        driver.quit()

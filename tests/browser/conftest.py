"""Browser tier: the demo page in headless Chromium driven by Selenium, against real `bentoml serve` processes.

Needs Debian's `chromium` and `chromium-driver` (explicit paths below, so Selenium Manager never goes to the
network) and the `selenium` package; without them the whole tier is skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.launcher import Server
from tests.helpers import skip_tier

ROOT = Path(__file__).resolve().parents[2]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1280,900",
]

try:
    import selenium  # noqa: F401

    MISSING = None
except ImportError:
    MISSING = "selenium is not installed (pip install -e '.[dev]')"
if MISSING is None and not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    MISSING = f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"


def pytest_collection_modifyitems(config, items):
    skip_tier(items, "browser", MISSING and f"browser tier skipped: {MISSING}")


@pytest.fixture
def downloads(tmp_path):
    path = tmp_path / "downloads"
    path.mkdir()
    return path


@pytest.fixture
def driver(tmp_path, downloads):
    """A headless Chromium with a fresh profile; browser console logs are kept (driver.get_log("browser"))."""
    browser = chromium(tmp_path, downloads)
    yield browser
    browser.quit()
    shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def chromium(tmp_path, downloads, extra_flags: tuple[str, ...] = ()):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, *extra_flags):
        options.add_argument(flag)
    profile = tmp_path / "chromium-profile"
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    prefs = {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    options.add_experimental_option("prefs", prefs)
    service = Service(str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    browser = webdriver.Chrome(options=options, service=service)
    browser.set_page_load_timeout(60)
    browser.set_script_timeout(60)
    return browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real `bentoml serve .` (all-in-one, CPU profile, 256 px) for the module's tests."""
    if MISSING is not None:
        pytest.skip(f"browser tier skipped: {MISSING}")
    tmp = tmp_path_factory.mktemp("browser-serve")
    env = {"AVATAR_DATA_DIR": str(tmp / "data"), "AVATAR_SIZE": "256", "AVATAR_PROFILE": "cpu"}
    with Server(".", env, tmp / "serve.log", cwd=ROOT) as running:
        yield running

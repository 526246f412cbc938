"""The all-in-one image (localhost/realtime-avatar:cpu) as a careful user runs it: `podman run --read-only
--cap-drop=ALL --security-opt no-new-privileges -p ... -v NAME:/data`, then a stream, a whole MP4 decoded and
measured, the page in Chromium, and an uploaded avatar kept over a restart."""

from __future__ import annotations

import time
from importlib import resources

import httpx
import pytest

from models.evaluation.measure import measure_video
from models.media import probe
from models.media.boxes import FragmentReader
from tests.container.conftest import free_port

pytestmark = [pytest.mark.container, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(images, names):
    from containers import Container

    volume = names("data", "volume")
    c = Container(images["all"], names("all"), port=free_port(), volumes=[f"{volume}:/data"], hardened=True).start()
    c.wait("/readyz", timeout=300)
    return c


def test_stream_is_fmp4_whose_first_fragment_is_a_keyframe(server):
    reader, fragments = FragmentReader(), []
    text = {"text": "Hello from a container. It streams while it speaks.", "size": 256}
    with httpx.stream("POST", server.url + "/api/v1/stream", json=text, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        for data in r.iter_raw():
            fragments += reader.feed(data)
    assert reader.init_complete and len(fragments) >= 3
    assert fragments[0].video_starts_with_keyframe and fragments[0].start_s("video") == 0
    assert max(f.end_s("video") or 0 for f in fragments) > 2.0  # ~3 s of speech made it through (the last
    # fragment may carry only the end of the audio)


def test_generate_then_download_an_mp4_that_decodes_and_is_lip_synced(server, tmp_path):
    body = {"text": "Maybe the baby bought a bigger bag, but the puppy is happy.", "size": 256, "fps": 25}
    r = httpx.post(server.url + "/api/v1/generate", json=body, timeout=120)
    assert r.status_code == 200, r.text
    meta = r.json()["metadata"]
    video = httpx.get(server.url + r.json()["video_url"], timeout=60)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    path = tmp_path / "answer.mp4"
    path.write_bytes(video.content)
    result, _ = measure_video(path)  # decoded with PyAV, the mouth found by Face Mesh on every frame
    assert result["face_found_ratio"] > 0.95 and result["container_ok"], result  # H.264 + AAC, A/V lengths agree
    assert abs(probe(path)["audio_duration_s"] - meta["audio_duration_s"]) < 0.1
    assert result["lip_sync_corr"] > 0.3 and abs(result["av_offset_ms"]) <= 80, result


def test_it_runs_hardened(server):
    """Not root, no capability, no privilege to gain, and nothing but /data and /tmp to write to."""
    from containers import podman

    probe = (
        "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/1/status; "
        "touch /home/bentoml/bento/x 2>/dev/null && echo root-writable; "
        "touch /data/x /tmp/x && echo data-and-tmp-writable"
    )
    out = podman("exec", server.name, "sh", "-c", probe)
    lines = out.split()
    assert lines[0] != "0", out
    assert "CapEff:" in lines and lines[lines.index("CapEff:") + 1] == "0000000000000000", out
    assert "NoNewPrivs:" in lines and lines[lines.index("NoNewPrivs:") + 1] == "1", out
    assert "root-writable" not in out and "data-and-tmp-writable" in out, out
    assert podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", server.name).strip() == "true"


def test_health_names_the_device_and_the_data_volume_is_writable(server):
    health = httpx.get(server.url + "/health", timeout=10).json()
    assert health["status"] == "healthy" and health["device"] == "cpu"
    assert httpx.get(server.url + "/livez", timeout=10).status_code == 200


def test_the_page_plays_in_chromium(server, tmp_path):
    from tests.browser.conftest import MISSING, chromium

    if MISSING:
        pytest.skip(MISSING)
    from selenium.webdriver.common.by import By

    from tests.browser.test_demo_page import VIDEO_JS, open_page, severe, video_brightness, wait_for

    driver = chromium(tmp_path, tmp_path)
    try:
        open_page(driver, server)  # relative URLs only: it works from wherever the container is published
        box = driver.find_element(By.ID, "text")
        box.clear()
        box.send_keys("Hello from inside a container. The page plays me while I am made.")
        driver.find_element(By.ID, "speak").click()
        s = wait_for(driver, lambda s: s["playing"] or s["state"] == "error", 120, "the video to start playing")
        assert s["state"] != "error", s["error"]
        time.sleep(1.0)
        assert driver.execute_script(VIDEO_JS + ".currentTime") > 0.5  # the playhead moves
        png = driver.get_screenshot_as_png()
        (tmp_path / "container-demo.png").write_bytes(png)
        assert video_brightness(driver, png) > 30
        assert not severe(driver)
    finally:
        driver.quit()


def test_an_uploaded_avatar_survives_a_restart(server):
    photo = (resources.files("assets") / "astronaut.png").read_bytes()
    up = httpx.post(server.url + "/api/v1/avatars", files={"photo": ("me.png", photo, "image/png")},
                    data={"name": "kept"}, timeout=60)  # fmt: skip
    assert up.status_code == 201, up.text
    avatar = up.json()["id"]
    server.stop()
    server.start()  # a new container on the same volume, as after a crash or a redeploy
    server.wait("/readyz", timeout=300)
    ids = [a["id"] for a in httpx.get(server.url + "/api/v1/avatars", timeout=10).json()["avatars"]]
    assert avatar in ids
    body = {"text": "Still here.", "avatar": avatar, "size": 256}
    assert httpx.post(server.url + "/api/v1/generate", json=body, timeout=120).status_code == 200

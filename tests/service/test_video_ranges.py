"""Video downloads served from disk by Starlette's FileResponse under a retention lease, with the contract's Range
rules on top: 206 for one range, multipart/byteranges for several, a malformed Range ignored (200), one that no
byte satisfies our 416 JSON with `Content-Range: bytes */size`, a suffix longer than the file the whole file."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.service


@pytest.fixture(scope="module")
def video(client) -> tuple[str, bytes]:
    r = client.post("/api/v1/generate", json={"text": "Ranges, please."})
    assert r.status_code == 200, r.text
    url = r.json()["video_url"]
    return url, client.get(url).content


def test_one_range_is_206_with_its_bytes(client, video):
    url, whole = video
    r = client.get(url, headers={"Range": "bytes=-100"})
    assert r.status_code == 206 and r.content == whole[-100:]
    assert r.headers["content-range"] == f"bytes {len(whole) - 100}-{len(whole) - 1}/{len(whole)}"


def test_several_ranges_come_as_multipart_byteranges(client, video):
    url, whole = video
    r = client.get(url, headers={"Range": "bytes=0-9, 100-119"})
    assert r.status_code == 206 and r.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert whole[0:10] in r.content and whole[100:120] in r.content


def test_a_suffix_longer_than_the_file_is_the_whole_file(client, video):
    url, whole = video
    r = client.get(url, headers={"Range": f"bytes=-{len(whole) * 2}"})
    assert r.status_code == 206 and r.content == whole


@pytest.mark.parametrize("header", ["bytes=abc", "lines=0-10", "bytes=20-10", "bytes="])
def test_a_malformed_range_is_ignored(client, video, header):
    url, whole = video
    r = client.get(url, headers={"Range": header})
    assert r.status_code == 200 and r.content == whole


def test_an_unsatisfiable_range_is_our_416(client, video):
    url, whole = video
    r = client.get(url, headers={"Range": f"bytes={len(whole) + 10}-"})
    assert r.status_code == 416 and r.json()["error"] == "range_not_satisfiable"
    assert r.headers["content-range"] == f"bytes */{len(whole)}"


def _store_with_a_video(tmp_path):
    from models.storage import OutputStore

    store = OutputStore(tmp_path)
    name, tmp = store.new_name(), store.temp_path()
    tmp.write_bytes(b"\x00" * 5000)
    store.commit(tmp, name)
    return store, name


def _send_to(response, scope_headers, send) -> None:
    import asyncio

    scope = {"type": "http", "method": "GET", "path": "/", "headers": scope_headers, "asgi": {"spec_version": "2.4"}}

    async def receive():
        return {"type": "http.disconnect"}

    asyncio.run(response(scope, receive, send))


def test_the_lease_is_held_while_sending_and_released_after_even_when_the_client_is_gone(tmp_path):
    from services.routes_video import LeasedVideo

    store, name = _store_with_a_video(tmp_path)
    seen = []

    async def send(message):
        seen.append((message["type"], dict(store._leases)))

    _send_to(LeasedVideo(store, name), [(b"range", b"bytes=0-99")], send)
    assert seen[0] == ("http.response.start", {name: 1}) and not store._leases  # held while sending, then freed

    async def gone(message):
        raise OSError("the client went away")

    with pytest.raises(OSError):
        _send_to(LeasedVideo(store, name), [], gone)
    assert not store._leases  # released all the same: the sweeper may take the file later

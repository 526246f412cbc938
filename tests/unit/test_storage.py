import os
import time

import pytest

from models.errors import InvalidInput, NotFound
from models.storage import OutputStore

pytestmark = pytest.mark.unit


def _put(store, data=b"x" * 100, age=0.0):
    """A finished output file, `age` seconds old (written directly: commit would sweep)."""
    name = store.new_name()
    path = store.root / name
    path.write_bytes(data)
    t = time.time() - age
    os.utime(path, (t, t))
    return name


def test_names_are_generated_and_unique(tmp_path):
    store = OutputStore(tmp_path)
    names = {store.new_name() for _ in range(100)}
    assert len(names) == 100 and all(n.endswith(".mp4") for n in names)


def test_temp_file_is_invisible_until_committed(tmp_path):
    store = OutputStore(tmp_path)
    tmp = store.temp_path()
    with pytest.raises((NotFound, InvalidInput)):
        store.path(tmp.name)
    name = store.new_name()
    store.commit(tmp, name)
    assert store.path(name).exists() and not tmp.exists()


@pytest.mark.parametrize("name", ["../etc/passwd", "..", "a/b.mp4", "x.txt", "", "%2e%2e.mp4", ".hidden.mp4"])
def test_path_like_names_are_rejected(tmp_path, name):
    with pytest.raises(InvalidInput):
        OutputStore(tmp_path).path(name)


def test_missing_file_is_not_found(tmp_path):
    with pytest.raises(NotFound):
        OutputStore(tmp_path).path("20260101-000000-abcdef.mp4")


def test_retention_by_age_spares_leased_and_partial_files(tmp_path):
    store = OutputStore(tmp_path, max_age_s=60)
    old, leased, fresh = _put(store, age=120), _put(store, age=120), _put(store)
    partial = store.temp_path()
    t = time.time() - 500
    os.utime(partial, (t, t))
    with store.lease(leased):
        removed = store.sweep()
    assert removed == [old]
    assert store.path(leased) and store.path(fresh) and partial.exists()
    assert store.sweep() == [leased]


def test_retention_by_total_size_removes_oldest_first(tmp_path):
    store = OutputStore(tmp_path, max_total_bytes=250)
    a = _put(store, age=30)
    b = _put(store, age=20)
    tmp = store.temp_path()
    tmp.write_bytes(b"y" * 100)
    c = store.new_name()
    store.commit(tmp, c)  # committing the third sweeps: 300 > 250 bytes
    names = {p.name for p in tmp_path.iterdir()}
    assert a not in names and {b, c} <= names

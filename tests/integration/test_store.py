"""The object store contract, run against both implementations: a local folder and S3 over loopback."""

from __future__ import annotations

import pytest

from pbt.errors import NotFoundError, ValidationError
from pbt.store import LocalStore, open_store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    request.getfixturevalue("s3_env")
    return open_store()


@pytest.mark.integration
def test_roundtrip_list_delete(store, tmp_path):
    store.put_json("a/b/one.json", {"x": 1})
    store.put_text("a/two.txt", "hello")
    store.put_bytes("c.bin", b"\x00\x01")
    assert store.get_json("a/b/one.json") == {"x": 1}
    assert store.get_text("a/two.txt") == "hello"
    assert store.exists("c.bin") and not store.exists("a/missing")
    assert list(store.list("a/")) == ["a/b/one.json", "a/two.txt"]
    assert list(store.list()) == ["a/b/one.json", "a/two.txt", "c.bin"]
    store.put_text("a/two.txt", "replaced")
    assert store.get_text("a/two.txt") == "replaced"
    store.delete("a/two.txt")
    assert not store.exists("a/two.txt")
    with pytest.raises(NotFoundError, match="a/two.txt"):
        store.get_bytes("a/two.txt")


@pytest.mark.integration
def test_dirs_roundtrip(store, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "w.bin").write_bytes(b"weights")
    (src / "sub" / "cfg.json").write_text("{}")
    keys = store.put_dir("models/m1", src)
    assert keys == ["models/m1/sub/cfg.json", "models/m1/w.bin"]
    out = store.get_dir("models/m1", tmp_path / "out")
    assert (out / "w.bin").read_bytes() == b"weights"
    assert (out / "sub" / "cfg.json").read_text() == "{}"
    with pytest.raises(NotFoundError):
        store.get_dir("models/none", tmp_path / "none")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a"])
def test_bad_keys_rejected(tmp_path, key):
    with pytest.raises(ValidationError, match="invalid object key"):
        LocalStore(tmp_path).put_text(key, "x")


def test_local_write_is_atomic(tmp_path, monkeypatch):
    """A failed write leaves the previous object intact and no temporary file behind."""
    import os

    store = LocalStore(tmp_path)
    store.put_text("k.txt", "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.put_text("k.txt", "new")
    monkeypatch.undo()
    assert store.get_text("k.txt") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["k.txt"]


def test_open_store_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("S3_ENDPOINT", raising=False)
    monkeypatch.setenv("PBT_STORE", str(tmp_path / "env"))
    assert open_store().url == (tmp_path / "env").resolve().as_uri()
    assert open_store(str(tmp_path / "x")).url == (tmp_path / "x").resolve().as_uri()
    with pytest.raises(ValidationError, match="S3_ENDPOINT"):
        open_store("s3://bucket/prefix")

"""The load step against a vLLM-compatible server on loopback: with `serving.adapter_volume` the
adapter is copied from the store to the shared volume and loaded by its path there, and the volume
keeps only the most recent adapters besides those in use, never removing anything outside it."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from pbt.errors import NotFoundError, ValidationError
from pbt.pipeline import run as pipeline_run
from pbt.pipeline.serving import adapter_folders, prune_adapters, remove_adapter
from pbt.pipeline.spec import parse_spec
from pbt.store import LocalStore
from pbt.store.layout import pipeline_step_key as record_key

TINY = "examples/pipeline/tiny.yaml"
ADAPTER = "training/r1-dpo/adapter"
PROMOTED = "training/old-dpo/adapter"


class FakeVllm:
    """vLLM's runtime LoRA routes: lora_path must be a folder on this machine with an adapter in it;
    a loaded name is refused until unloaded (vLLM's 400 body: ``{"message": ...}``)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.loaded: dict[str, str] = {}
        self.fail_next: tuple[int, str] | None = None
        self.models_status = 200
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != "/v1/models" or fake.models_status != 200:
                    self.send_error(fake.models_status if self.path == "/v1/models" else 404)
                    return
                cards = [{"id": "tiny", "root": "/models/tiny"}]
                cards += [{"id": n, "root": p, "parent": "tiny"} for n, p in fake.loaded.items()]
                data = json.dumps({"object": "list", "data": cards}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append((self.path, body))
                status, message = fake.answer(self.path, body)
                data = (
                    json.dumps(
                        {"object": "error", "message": message, "type": "BadRequestError", "code": status}
                    )
                    if status != 200
                    else message
                ).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, body: dict) -> tuple[int, str]:
        if self.fail_next:
            failure, self.fail_next = self.fail_next, None
            return failure
        name = body["lora_name"]
        if path == "/v1/unload_lora_adapter":
            if self.loaded.pop(name, None) is None:
                return 400, f"The lora adapter '{name}' cannot be found."
            return 200, f"Success: LoRA adapter '{name}' removed successfully."
        if name in self.loaded:
            return 400, f"The lora adapter '{name}' has already been loaded."
        if not (Path(body["lora_path"]) / "adapter_config.json").is_file():
            return 400, f"No adapter found for {body['lora_path']}"
        self.loaded[name] = body["lora_path"]
        return 200, f"Success: LoRA adapter '{name}' added successfully."


@pytest.fixture
def vllm() -> Iterator[FakeVllm]:
    fake = FakeVllm()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def store(tmp_path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    for key in (ADAPTER, PROMOTED):
        store.put_json(f"{key}/adapter_config.json", {"r": 16, "key": key})
        store.put_bytes(f"{key}/adapter_model.safetensors", b"weights of " + key.encode())
    return store


def _spec(agent: str, volume: Path | None, promoted: str | None = PROMOTED, keep: int | None = None):
    data = yaml.safe_load(Path(TINY).read_text())
    data["serving"].update(agent=f"{agent}/v1", promoted=promoted)
    if volume is not None:
        data["serving"]["adapter_volume"] = {"claim": "pbt-adapters", "mount_path": str(volume)}
        if keep is not None:
            data["serving"]["adapter_volume"]["keep"] = keep
    return parse_spec(yaml.safe_dump(data))


def test_the_load_step_copies_adapters_to_the_volume_and_loads_them_by_path(tmp_path, vllm, store):
    volume = tmp_path / "volume"
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(_spec(vllm.url, volume).to_yaml())
    pipeline_run.run_step("init", str(spec_file), "r1", store=store)
    for step in ("trees", "prefs"):
        store.put_json(record_key("r1", step), {"outputs": {}})
    store.put_json(record_key("r1", "train"), {"outputs": {"adapter": ADAPTER}})
    out = pipeline_run.run_step("load", "store:pipelines/r1/spec.yaml", "r1", store=store)
    assert out == {"candidate": "cand-r1", "promoted": "promoted"}
    assert vllm.requests == [
        ("/v1/load_lora_adapter", {"lora_name": "cand-r1", "lora_path": str(volume / ADAPTER)}),
        ("/v1/load_lora_adapter", {"lora_name": "promoted", "lora_path": str(volume / PROMOTED)}),
    ]
    for key in (ADAPTER, PROMOTED):
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            assert (volume / key / name).read_bytes() == store.get_bytes(f"{key}/{name}")
    assert sorted(p.name for p in (volume / "training" / "r1-dpo").iterdir()) == ["adapter"]  # no partials


def test_a_name_vllm_already_holds_is_unloaded_and_loaded_again(tmp_path, vllm, store):
    spec = _spec(vllm.url, tmp_path / "volume")
    first = pipeline_run.load_adapter(spec, store, "promoted", PROMOTED)
    vllm.requests.clear()
    assert pipeline_run.load_adapter(spec, store, "promoted", ADAPTER) == str(tmp_path / "volume" / ADAPTER)
    assert [path for path, _ in vllm.requests] == [
        "/v1/load_lora_adapter",
        "/v1/unload_lora_adapter",
        "/v1/load_lora_adapter",
    ]
    assert (
        vllm.loaded == {"promoted": str(tmp_path / "volume" / ADAPTER)} and first != vllm.loaded["promoted"]
    )


def test_an_adapter_already_on_the_volume_is_not_downloaded_again(tmp_path, vllm, store, monkeypatch):
    spec = _spec(vllm.url, tmp_path / "volume")
    pipeline_run.load_adapter(spec, store, "a", ADAPTER)
    monkeypatch.setattr(store, "get_dir", lambda *a: pytest.fail("downloaded twice"))
    pipeline_run.load_adapter(spec, store, "b", ADAPTER)
    assert vllm.loaded == {"a": str(tmp_path / "volume" / ADAPTER), "b": str(tmp_path / "volume" / ADAPTER)}


def test_without_a_volume_lora_path_is_the_store_key(vllm, store):
    spec = _spec(vllm.url, None)
    vllm.answer = lambda path, body: (200, "ok")
    assert pipeline_run.load_adapter(spec, store, "cand", ADAPTER) == ADAPTER
    assert vllm.requests == [("/v1/load_lora_adapter", {"lora_name": "cand", "lora_path": ADAPTER})]


def test_load_errors_name_the_url_status_and_server_message(tmp_path, vllm, store):
    spec = _spec(vllm.url, tmp_path / "volume")
    vllm.fail_next = (400, "max_loras reached")
    with pytest.raises(ValidationError, match=r"/v1/load_lora_adapter: HTTP 400: max_loras reached"):
        pipeline_run.load_adapter(spec, store, "cand", ADAPTER)
    vllm.fail_next = (500, "engine dead")
    with pytest.raises(ValidationError, match="HTTP 500: engine dead"):
        pipeline_run.load_adapter(spec, store, "cand", ADAPTER)
    assert vllm.loaded == {}


def test_a_store_key_without_an_adapter_fails_before_calling_the_server(tmp_path, vllm, store):
    store.put_text("training/empty/adapter/README", "no adapter here")
    spec = _spec(vllm.url, tmp_path / "volume")
    with pytest.raises(ValidationError, match="adapter_config.json missing"):
        pipeline_run.load_adapter(spec, store, "cand", "training/empty/adapter")
    with pytest.raises(NotFoundError, match="no objects under"):
        pipeline_run.load_adapter(spec, store, "cand", "training/missing/adapter")
    with pytest.raises(ValidationError, match="'..' segment"):
        pipeline_run.load_adapter(spec, store, "cand", "training/../../etc")
    assert vllm.requests == []
    assert list((tmp_path / "volume" / "training" / "empty").iterdir()) == []


def test_an_unreachable_agent_is_a_clear_error(tmp_path, store):
    spec = _spec("http://127.0.0.1:9", tmp_path / "volume")
    with pytest.raises(ValidationError, match=r"http://127.0.0.1:9/v1/load_lora_adapter: ConnectError"):
        pipeline_run.load_adapter(spec, store, "cand", ADAPTER)


# ---------------------------------------------------------------- retention on the volume


def _old_adapter(volume: Path, key: str, age: float) -> Path:
    """An adapter staged `age` seconds ago by an earlier run."""
    folder = volume / key
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    then = time.time() - age
    os.utime(folder, (then, then))
    return folder


def _run_load(tmp_path: Path, store: LocalStore, spec) -> dict:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(spec.to_yaml())
    pipeline_run.run_step("init", str(spec_file), "r1", store=store)
    for step in ("trees", "prefs"):
        store.put_json(record_key("r1", step), {"outputs": {}})
    store.put_json(record_key("r1", "train"), {"outputs": {"adapter": ADAPTER}})
    return pipeline_run.run_step("load", "store:pipelines/r1/spec.yaml", "r1", store=store)


def test_the_load_step_keeps_the_most_recent_adapters_and_those_in_use(tmp_path, vllm, store):
    volume = tmp_path / "volume"
    oldest = _old_adapter(volume, "training/a-dpo/adapter", 400)
    served = _old_adapter(volume, "training/b-dpo/adapter", 300)
    middle = _old_adapter(volume, "training/c-dpo/adapter", 200)
    newest = _old_adapter(volume, "training/d-dpo/adapter", 100)
    (volume / "README").write_text("not an adapter")
    vllm.loaded["cand-b"] = str(served)  # an earlier candidate the agent still serves
    _run_load(tmp_path, store, _spec(vllm.url, volume, keep=3))
    # kept: this run's two (the most recent) + the next most recent + the served one
    assert {p.relative_to(volume).as_posix() for p in adapter_folders(volume)} == {
        ADAPTER,
        PROMOTED,
        "training/d-dpo/adapter",
        "training/b-dpo/adapter",
    }
    assert not oldest.exists() and not middle.exists() and newest.is_dir() and served.is_dir()
    assert not (volume / "training" / "a-dpo").exists()  # emptied parents go too
    assert (volume / "README").read_text() == "not an adapter"
    assert store.exists(f"{ADAPTER}/adapter_config.json")  # the store is never touched


def test_adapters_just_loaded_survive_even_with_keep_1(tmp_path, vllm, store):
    volume = tmp_path / "volume"
    old = _old_adapter(volume, "training/a-dpo/adapter", 100)
    _run_load(tmp_path, store, _spec(vllm.url, volume, keep=1))
    assert sorted(p.relative_to(volume).as_posix() for p in adapter_folders(volume)) == sorted(
        [ADAPTER, PROMOTED]
    )
    assert not old.exists()


def test_an_agent_that_does_not_list_its_adapters_protects_only_this_runs(tmp_path, vllm, store, caplog):
    volume = tmp_path / "volume"
    served = _old_adapter(volume, "training/b-dpo/adapter", 100)
    vllm.loaded["cand-b"] = str(served)
    vllm.models_status = 500
    out = _run_load(tmp_path, store, _spec(vllm.url, volume, keep=2))
    assert out == {"candidate": "cand-r1", "promoted": "promoted"}
    assert not served.exists()
    assert "does not list its adapters" in caplog.text


def test_reloading_an_adapter_makes_it_recent_again(tmp_path, vllm, store):
    volume = tmp_path / "volume"
    spec = _spec(vllm.url, volume)
    staged = _old_adapter(volume, PROMOTED, 1000)
    _old_adapter(volume, "training/x-dpo/adapter", 10)
    pipeline_run.load_adapter(spec, store, "promoted", PROMOTED)
    assert adapter_folders(volume)[0] == staged


def test_removal_stays_inside_the_volume(tmp_path):
    volume, outside = tmp_path / "volume", tmp_path / "outside"
    _old_adapter(volume, "training/a-dpo/adapter", 10)
    (outside / "adapter").mkdir(parents=True)
    (outside / "adapter" / "adapter_config.json").write_text("{}")
    (volume / "linked").symlink_to(outside)
    (volume / "training" / "link-dpo").symlink_to(outside)
    for bad, why in (
        ("../outside/adapter", "not a folder inside the adapter volume"),
        ("training/../../outside/adapter", "not a folder inside the adapter volume"),
        (str(outside / "adapter"), "outside the adapter volume"),
        (str(volume), "not a folder inside the adapter volume"),
        ("", "not a folder inside the adapter volume"),
        ("linked/adapter", "passes through a link"),
        ("training/link-dpo/adapter", "passes through a link"),
    ):
        with pytest.raises(ValidationError, match=why):
            remove_adapter(volume, bad)
    with pytest.raises(ValidationError, match="adapter_config.json missing"):
        remove_adapter(volume, "training")
    # the links are not adapters of the volume, so pruning to 1 removes nothing through them
    assert [p.relative_to(volume).as_posix() for p in adapter_folders(volume)] == ["training/a-dpo/adapter"]
    assert prune_adapters(volume, 1, set()) == []
    assert (outside / "adapter" / "adapter_config.json").is_file()
    remove_adapter(volume, str(volume / "training" / "a-dpo" / "adapter"))
    assert not (volume / "training" / "a-dpo").exists() and (volume / "training").is_dir()


def test_the_spec_refuses_keeping_no_adapter(vllm, tmp_path):
    with pytest.raises(ValidationError, match=r"serving\.adapter_volume\.keep"):
        _spec(vllm.url, tmp_path / "volume", keep=0)

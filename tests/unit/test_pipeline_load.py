"""The load step against a vLLM-compatible server on loopback: with `serving.adapter_volume` the
adapter is copied from the store to the shared volume and loaded by its path there."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from pbt.errors import NotFoundError, ValidationError
from pbt.pipeline import run as pipeline_run
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
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

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


def _spec(agent: str, volume: Path | None, promoted: str | None = PROMOTED):
    data = yaml.safe_load(Path(TINY).read_text())
    data["serving"].update(agent=f"{agent}/v1", promoted=promoted)
    if volume is not None:
        data["serving"]["adapter_volume"] = {"claim": "pbt-adapters", "mount_path": str(volume)}
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

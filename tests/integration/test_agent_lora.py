"""Runtime LoRA adapters in the agent server (vLLM's load/unload API; lora_path is a store key)."""

from __future__ import annotations

import concurrent.futures
import os

import httpx
import pytest
from agent_process import AgentProcess

from pbt.store import LocalStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Q = [{"role": "user", "content": "What is the capital of France?"}]


def _adapter(model_dir, out, seed):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def served(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    store = LocalStore(root / "store")
    for version in (1, 2):
        store.put_dir(
            f"training/run-{version}/adapter", _adapter(tiny_model_dir, root / f"a{version}", version)
        )
    store.put_text("secret/adapter/adapter_config.json", "{}")
    old = os.environ.get("PBT_STORE")
    os.environ["PBT_STORE"] = str(root / "store")  # the server process inherits it
    try:
        with AgentProcess(tiny_model_dir, model_name="tiny", extra_args=("--enable-lora",)) as proc:
            yield proc
    finally:
        if old is None:
            os.environ.pop("PBT_STORE", None)
        else:
            os.environ["PBT_STORE"] = old


def _chat(agent, model, max_tokens=10):
    body = {"model": model, "messages": Q, "temperature": 0, "max_tokens": max_tokens}
    r = httpx.post(f"{agent.url}/v1/chat/completions", json=body, timeout=60)
    return r


def _load(agent, name, path):
    return httpx.post(
        f"{agent.url}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path}, timeout=60
    )


def test_load_use_unload_reload_while_requests_run(served):
    base = _chat(served, "tiny").json()["choices"][0]["message"]["content"]
    assert _load(served, "cand", "training/run-1/adapter").status_code == 200
    ids = [m["id"] for m in httpx.get(f"{served.url}/v1/models").json()["data"]]
    assert ids == ["tiny", "cand"]
    v1 = _chat(served, "cand")
    assert v1.status_code == 200 and v1.json()["model"] == "cand"
    v1_text = v1.json()["choices"][0]["message"]["content"]
    assert v1_text != base
    assert _chat(served, "tiny").json()["choices"][0]["message"]["content"] == base  # side by side
    # a new version under the same name while other requests run on both models
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        running = [pool.submit(_chat, served, m, 40) for m in ("tiny", "cand") * 4]
        assert _load(served, "cand", "store:training/run-2/adapter").status_code == 200
        assert all(f.result().status_code == 200 for f in running)
    v2_text = _chat(served, "cand").json()["choices"][0]["message"]["content"]
    assert v2_text != v1_text
    assert httpx.post(f"{served.url}/v1/unload_lora_adapter", json={"lora_name": "cand"}).status_code == 200
    gone = _chat(served, "cand")
    assert gone.status_code == 400 and "not served" in gone.json()["error"]["message"]
    assert _chat(served, "tiny").json()["choices"][0]["message"]["content"] == base
    missing = httpx.post(f"{served.url}/v1/unload_lora_adapter", json={"lora_name": "cand"})
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../store/training/run-1/adapter",
        "http://127.0.0.1:1/x",
        "s3://other/training/x",
        "secret/adapter",
        "training/../secret/adapter",
        "training/missing/adapter",
        "~/x",
    ],
)
def test_bad_lora_path_is_a_clear_400_and_the_server_keeps_serving(served, path):
    r = _load(served, "bad", path)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert "store key" in message and r.json()["error"]["param"] == "lora_path"
    assert _chat(served, "tiny").status_code == 200
    assert "bad" not in [m["id"] for m in httpx.get(f"{served.url}/v1/models").json()["data"]]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"lora_name": "x"},
        {"lora_path": "training/run-1/adapter"},
        {"lora_name": "bad name", "lora_path": "training/run-1/adapter"},
        {"lora_name": "a.b", "lora_path": "training/run-1/adapter"},
        {"lora_name": "x" * 65, "lora_path": "training/run-1/adapter"},
        {"lora_name": "tiny", "lora_path": "training/run-1/adapter"},
        {"lora_name": "x", "lora_path": ["training/run-1/adapter"]},
        {"lora_name": "x", "lora_path": "training/" + "a/" * 600},
        '{"lora_name": "x", "lora_path": "training/\\ud800"}',  # a lone surrogate, as JSON text
        [1, 2],
        "null",
    ],
)
def test_hostile_load_bodies_are_400(served, body):
    if isinstance(body, str):
        r = httpx.post(f"{served.url}/v1/load_lora_adapter", content=body, timeout=30)
    else:
        r = httpx.post(f"{served.url}/openai/v1/load_lora_adapter", json=body, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"]
    assert httpx.post(f"{served.url}/v1/unload_lora_adapter", json={"lora_name": "../x"}).status_code == 400
    assert _chat(served, "tiny").status_code == 200

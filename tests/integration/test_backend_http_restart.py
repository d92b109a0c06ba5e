"""The agent server dies mid-run and comes back; the HTTP backend's retries finish every request once."""

from __future__ import annotations

import asyncio

import pytest
from agent_process import AgentProcess

from pbt.backends.base import SamplingParams
from pbt.backends.http import HttpBackend
from pbt.backends.local import LocalBackend
from pbt.errors import UnavailableError

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GREEDY = SamplingParams(temperature=0.0, max_tokens=24)
PROMPTS = [[{"role": "user", "content": f"Request {i}: name a city."}] for i in range(16)]


def test_restart_mid_run_loses_and_duplicates_nothing(tiny_model_dir):
    # what each prompt must produce (greedy), computed in-process
    async def expected():
        async with LocalBackend(tiny_model_dir, num_threads=1) as local:
            results = await asyncio.gather(*(local.chat(p, GREEDY) for p in PROMPTS))
        return [r.choices[0].text for r in results]

    want = asyncio.run(expected())
    assert len(set(want)) == len(want), "prompts should give distinguishable outputs"

    server = AgentProcess(tiny_model_dir, model_name="tiny").start()
    try:

        async def main():
            backend = HttpBackend(
                server.openai_url,
                max_concurrency=2,
                max_attempts=10_000,
                max_retry_s=120,
                backoff_initial=0.1,
                backoff_max=0.5,
            )
            done: list[int] = []

            async def one(i: int):
                result = await backend.chat(PROMPTS[i], GREEDY)
                done.append(i)
                return result

            tasks = [asyncio.create_task(one(i)) for i in range(len(PROMPTS))]
            while len(done) < 3:
                await asyncio.sleep(0.02)
            server.kill()  # crash with requests in flight and others queued in the client
            killed_after = len(done)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(server.start)
            results = await asyncio.gather(*tasks)
            await backend.aclose()
            return results, done, killed_after

        results, done, killed_after = asyncio.run(main())
    finally:
        server.stop()
    assert killed_after < len(PROMPTS), "the server was killed after all requests finished"
    assert sorted(done) == list(range(len(PROMPTS))), "a request was lost or finished twice"
    assert [r.choices[0].text for r in results] == want


def test_unreachable_endpoint_names_endpoint_and_reason():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"

    async def main():
        async with HttpBackend(url, model="m", max_attempts=2, backoff_initial=0.01) as backend:
            await backend.chat([{"role": "user", "content": "hi"}], GREEDY)

    with pytest.raises(UnavailableError) as info:
        asyncio.run(main())
    assert info.value.endpoint == url
    assert "ConnectError" in str(info.value) and "2 attempts" in str(info.value)

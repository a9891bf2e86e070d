"""A real `rnnkit serve` on 127.0.0.1 under 20 concurrent clients: valid answers or clean 429s."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from helpers_serve import make_checkpoint, running_server

CLIENTS = 20
REQUESTS_PER_CLIENT = 12  # 240 in all


def check(response: httpx.Response, kind: str) -> str:
    """'ok' or 'busy'; anything else fails the test with what came back."""
    if response.status_code == 429:
        assert "busy" in response.json()["error"], response.text
        return "busy"
    assert response.status_code == 200, f"{kind}: {response.status_code} {response.text[:200]}"
    if kind == "generate":
        samples = response.json()["samples"]
        assert samples and all(isinstance(s, str) and s.startswith("The ") for s in samples)
    elif kind in ("stream", "abandon"):
        blocks = response.text.strip().split("\n\n")
        assert blocks[-1].startswith("event: done"), blocks[-1]
        text = "".join(json.loads(b.removeprefix("data: "))["text"] for b in blocks[:-1])
        assert text.startswith("The ")
    else:
        assert response.json()["model_type"] == "lstm"
    return "ok"


def client_run(url: str, client_no: int) -> list[tuple[str, str]]:
    """12 tasks; like a polite client, each retries a 429 up to 3 times after a pause."""
    results = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(REQUESTS_PER_CLIENT):
            kind = ("generate", "stream", "generate", "model", "abandon")[(client_no + i) % 5]
            body = {"start_text": "The ", "length": 120, "seed": client_no * 100 + i, "temperature": 0.9}
            for attempt in range(4):
                outcome = one_request(client, kind, body, i)
                results.append((kind, outcome))
                if outcome == "ok":
                    break
                time.sleep(0.05 * (attempt + 1))
    return results


def one_request(client: httpx.Client, kind: str, body: dict, i: int) -> str:
    if kind == "generate":
        return check(client.post("/generate", json=dict(body, num_samples=1 + i % 3)), kind)
    if kind == "stream":
        return check(client.post("/generate/stream", json=body), kind)
    if kind == "abandon":  # read the first event of a long stream, then hang up
        with client.stream("POST", "/generate/stream", json=dict(body, length=500)) as r:
            if r.status_code != 200:
                r.read()
                return check(r, kind)
            assert next(r.iter_text()).startswith("data: ")
            return "ok"
    return check(client.get("/model"), kind)


def test_many_concurrent_clients(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "run")
    with running_server(checkpoint, "--max_concurrent", "3", "--max_length", "500") as url:
        start = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            runs = list(pool.map(lambda n: client_run(url, n), range(CLIENTS)))
        elapsed = time.monotonic() - start
        outcomes = Counter(r for run in runs for r in run)
        assert sum(outcomes.values()) >= CLIENTS * REQUESTS_PER_CLIENT >= 200
        assert outcomes[("model", "busy")] == 0  # only generations are limited
        assert outcomes[("generate", "ok")] > 0 and outcomes[("stream", "ok")] > 0
        assert outcomes[("generate", "busy")] + outcomes[("stream", "busy")] > 0, "the limit never bit"
        assert elapsed < 90, f"{elapsed:.1f} s"
        assert outcomes[("abandon", "ok")] > 0
        # every slot comes back, abandoned streams included (each stops within a step)
        deadline = time.monotonic() + 10
        while (health := httpx.get(f"{url}/health", timeout=10).json())["busy"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert health == {"status": "ok", "busy": 0, "max_concurrent": 3}
        # and it still generates
        r = httpx.post(f"{url}/generate", json={"start_text": "The ", "length": 20}, timeout=30)
        assert r.status_code == 200 and len(r.json()["samples"][0]) == 24
        print(f"{sum(outcomes.values())} requests in {elapsed:.1f} s: {dict(outcomes)}")

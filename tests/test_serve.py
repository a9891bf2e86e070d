"""The HTTP API in-process (Starlette's TestClient): answers, validation, limits, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings

import httpx
import pytest
from helpers_serve import bearer, make_checkpoint, one_torch_thread, running_server

with warnings.catch_warnings():  # starlette 1.x nudges toward httpx2; httpx works the same here
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

from rnnkit.errors import ConfigError, RnnkitError
from rnnkit.sampling.generator import Generator
from rnnkit.serve.app import MAX_BODY_BYTES, bind, check_token_for_host, create_app

TOKEN = "s3cret-Token_1+/="


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    return Generator.load(make_checkpoint(tmp_path_factory.mktemp("run")), "cpu")


@pytest.fixture(scope="module")
def client(generator):
    with TestClient(create_app(generator, max_length=300, max_concurrent=2, max_samples=4)) as c:
        yield c


def events(body: str) -> list[tuple[str, dict]]:
    out = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((fields.get("event", "message"), json.loads(fields["data"])))
    return out


def test_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Generate" in r.text and "/generate/stream" in r.text
    assert "http://" not in r.text and "https://" not in r.text  # nothing fetched from the internet


def test_health_and_model(client, generator):
    assert client.get("/health").json()["status"] == "ok"
    m = client.get("/model").json()
    assert m["vocab_size"] == len(generator.vocab) and m["model_type"] == "lstm" and m["iteration"] == 1
    assert m["limits"] == {"max_length": 300, "max_concurrent": 2, "max_samples": 4, "max_start_chars": 10_000}


def test_generate(client):
    body = {"start_text": "The ", "length": 50, "temperature": 0.8, "top_k": 5, "top_p": 0.9, "seed": 7,
            "num_samples": 3}
    r = client.post("/generate", json=body)
    assert r.status_code == 200
    samples = r.json()["samples"]
    assert len(samples) == 3 and all(s.startswith("The ") and len(s) == 54 for s in samples)
    assert client.post("/generate", json=body).json()["samples"] == samples  # seeded: repeatable
    assert client.post("/generate", json={"length": 0, "start_text": "dog"}).json() == {"samples": ["dog"]}
    assert len(client.post("/generate", json={}).json()["samples"][0]) == 200  # defaults


def test_stream_matches_generate(client):
    body = {"start_text": "Anna", "length": 80, "seed": 3, "temperature": 0.9}
    r = client.post("/generate/stream", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    evs = events(r.text)
    # the start text comes first; pieces that pile up while the client reads go out as one
    # event (serve.sse_events), so the first event may already hold generated text
    assert evs[0][0] == "message" and evs[0][1]["text"].startswith("Anna") and evs[-1][0] == "done"
    text = "".join(d["text"] for e, d in evs if e == "message")
    assert evs[-1][1] == {"chars": len(text)}
    assert text == client.post("/generate", json=body).json()["samples"][0]


BAD_FIELDS = [
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": 0}, "temperature"),
    ({"temperature": -1}, "temperature"),
    ({"temperature": 11}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"length": -1}, "length"),
    ({"length": 301}, "length"),  # over --max_length
    ({"length": 1.5}, "length"),
    ({"length": "10"}, "length"),
    ({"top_k": 0}, "top_k"),
    ({"top_k": 2.5}, "top_k"),
    ({"top_p": 0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"seed": -1}, "seed"),
    ({"seed": "x"}, "seed"),
    ({"num_samples": 0}, "num_samples"),
    ({"num_samples": 5}, "num_samples"),  # over --max_samples
    ({"sample": "yes"}, "sample"),
    ({"start_text": 5}, "start_text"),
    ({"start_text": "x" * 10_001}, "start_text"),
    ({"start_text": "Zebra€"}, "start_text"),  # characters the model never saw
    ({"stop_at": ["\n"]}, "stop_at"),
    ({"temp": 1.0}, "temp"),  # a typo is not silently ignored
]


@pytest.mark.parametrize("path", ["/generate", "/generate/stream"])
@pytest.mark.parametrize("body, field", BAD_FIELDS)
def test_bad_fields_name_the_field(client, path, body, field):
    r = client.post(path, json=body)
    assert r.status_code == 400
    assert r.json()["field"] == field and field in r.json()["error"]


def test_unknown_start_text_can_be_skipped(client):
    r = client.post("/generate", json={"start_text": "Zeb€", "skip_unknown": True, "length": 5})
    assert r.status_code == 200 and r.json()["samples"][0].startswith("Zeb€")


def test_stream_is_one_sample(client):
    r = client.post("/generate/stream", json={"num_samples": 2})
    assert r.status_code == 400 and r.json()["field"] == "num_samples"


@pytest.mark.parametrize("raw", [b"{", b"[1, 2]", b'"text"', b'{"temperature": NaN}', b"\xff\xfe"])
def test_bad_json_is_400(client, raw):
    r = client.post("/generate", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()


def test_huge_body_is_413(client):
    r = client.post("/generate", content=b" " * (MAX_BODY_BYTES + 1))
    assert r.status_code == 413 and "error" in r.json()


def test_unknown_path_and_method_are_json(client):
    assert client.get("/nope").json() == {"error": "Not Found"}
    r = client.get("/generate")
    assert r.status_code == 405 and "error" in r.json()


class BlockingGenerator:
    """Delegates to a real Generator but holds generate() until released."""

    def __init__(self, real: Generator):
        self.real, self.vocab, self.meta = real, real.vocab, real.meta
        self.entered, self.release = threading.Semaphore(0), threading.Event()

    def describe(self):
        return self.real.describe()

    def generate(self, opts):
        self.entered.release()
        assert self.release.wait(10)
        return self.real.generate(opts)


def test_over_the_concurrency_limit_is_429(generator):
    blocking = BlockingGenerator(generator)
    with TestClient(create_app(blocking, max_concurrent=2)) as c:
        results = []
        workers = [threading.Thread(target=lambda: results.append(c.post("/generate", json={"length": 5})))
                   for _ in range(2)]
        for w in workers:
            w.start()
        assert blocking.entered.acquire(timeout=10) and blocking.entered.acquire(timeout=10)
        assert c.get("/health").json()["busy"] == 2
        r = c.post("/generate", json={"length": 5})
        assert r.status_code == 429 and "busy" in r.json()["error"] and r.headers["retry-after"] == "1"
        assert c.post("/generate/stream", json={"length": 5}).status_code == 429
        blocking.release.set()
        for w in workers:
            w.join(10)
        assert [r.status_code for r in results] == [200, 200]
        assert c.get("/health").json()["busy"] == 0
        assert c.post("/generate", json={"length": 5}).status_code == 200


class BrokenGenerator(BlockingGenerator):
    def generate(self, opts):
        raise RuntimeError("boom")

    def stream(self, opts):
        raise RnnkitError("the model ran out of ideas")
        yield  # a generator function


def test_errors_are_json_not_crashes(generator):
    with TestClient(create_app(BrokenGenerator(generator), max_concurrent=1), raise_server_exceptions=False) as c:
        r = c.post("/generate", json={})
        assert r.status_code == 500 and r.json() == {"error": "internal error: RuntimeError"}
        evs = events(c.post("/generate/stream", json={}).text)
        assert evs == [("error", {"error": "the model ran out of ideas"})]
        assert c.get("/health").json() == {"status": "ok", "busy": 0, "max_concurrent": 1}  # slots freed


def test_bad_limits_are_refused(generator):
    with pytest.raises(RnnkitError, match="max_concurrent"):
        create_app(generator, max_concurrent=0)


def test_binds_loopback_by_default_and_reports_a_busy_port():
    import inspect

    from rnnkit.cli.parser import build_parser
    from rnnkit.serve.app import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert build_parser().parse_args(["serve", "run"]).host == "127.0.0.1"
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1"
        with pytest.raises(RnnkitError, match="pick another --port"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


# ---- the token -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def guarded(generator):
    with TestClient(create_app(generator, token=TOKEN)) as c:
        yield c


NOT_THE_TOKEN = [{}, bearer("wrong"), bearer(TOKEN[:-1]), bearer(TOKEN + "x"), {"Authorization": TOKEN},
                 {"Authorization": f"Basic {TOKEN}"}]


@pytest.mark.parametrize("headers", NOT_THE_TOKEN)
@pytest.mark.parametrize("method, path", [("GET", "/health"), ("GET", "/model"), ("POST", "/generate"),
                                          ("POST", "/generate/stream"), ("GET", "/nope")])
def test_api_needs_the_token(guarded, method, path, headers):
    r = guarded.request(method, path, headers=headers, json={"length": 5} if method == "POST" else None)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in r.json()["error"]


def test_the_right_token_gets_in(guarded):
    assert guarded.get("/health", headers=bearer(TOKEN)).status_code == 200
    r = guarded.post("/generate", json={"length": 5, "start_text": "A"}, headers=bearer(TOKEN))
    assert r.status_code == 200 and len(r.json()["samples"][0]) == 6
    r = guarded.post("/generate/stream", json={"length": 5}, headers={"authorization": f"bearer {TOKEN}"})
    assert r.status_code == 200 and events(r.text)[-1] == ("done", {"chars": 5})  # the scheme is case-blind


def test_page_loads_without_the_token_and_sends_it(guarded, client):
    r = guarded.get("/")
    assert r.status_code == 200 and "Generate" in r.text
    assert "token=" in r.text and 'headers.set("Authorization"' in r.text
    assert r.text.index("Authorization") < r.text.index('fetch("/model")')  # wraps fetch before the page uses it
    assert "Authorization" not in client.get("/").text  # no token: the page as it always was


def test_bad_tokens_are_refused(generator):
    for bad in ["", "two words", "naïve", "tab\there"]:
        with pytest.raises(ConfigError, match="printable ASCII"):
            create_app(generator, token=bad)
        with pytest.raises(ConfigError, match="printable ASCII"):
            check_token_for_host("127.0.0.1", bad, no_token=False)
    with pytest.raises(ConfigError, match="not both"):
        check_token_for_host("0.0.0.0", TOKEN, no_token=True)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "LocalHost", "::1"])
def test_loopback_needs_no_token(host):
    check_token_for_host(host, None, no_token=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "example.org"])
def test_other_hosts_need_a_token_or_no_token(host):
    with pytest.raises(ConfigError, match=f"--host {host} exposes .*--token SECRET.*--no_token"):
        check_token_for_host(host, None, no_token=False)
    check_token_for_host(host, TOKEN, no_token=False)
    check_token_for_host(host, None, no_token=True)  # open to the network, knowingly


@pytest.mark.parametrize("flags, env_token, says", [
    ([], None, "--host 0.0.0.0 exposes the server beyond this machine"),
    (["--no_token"], TOKEN, "not both"),  # RNNKIT_TOKEN counts as --token
    ([], TOKEN, "no-such-run"),  # RNNKIT_TOKEN passes the host check; only then is the checkpoint read
])
def test_cli_checks_the_host_before_loading_anything(tmp_path, flags, env_token, says):
    env = {k: v for k, v in os.environ.items() if k != "RNNKIT_TOKEN"}
    if env_token is not None:
        env["RNNKIT_TOKEN"] = env_token
    cmd = [sys.executable, "-m", "rnnkit", "serve", str(tmp_path / "no-such-run"), "--host", "0.0.0.0", *flags]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: ") and says in lines[0], r.stderr


def test_live_server_takes_the_token_from_the_environment(tmp_path):
    with running_server(make_checkpoint(tmp_path), token=TOKEN) as url:
        assert httpx.get(f"{url}/model").status_code == 401
        assert httpx.get(f"{url}/").status_code == 200
        r = httpx.post(f"{url}/generate/stream", json={"length": 5}, headers=bearer(TOKEN), timeout=30)
        assert r.status_code == 200 and events(r.text)[-1] == ("done", {"chars": 5})

"""``sentiment serve``: the API's contract and limits, dynamic batching, the page in Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import needs

from sentiment import load_model, predict
from sentiment.cli import main as commands

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from sentiment.serve.app import ServeConfig, create_app  # noqa: E402
from sentiment.serve.batcher import Batcher, Overloaded  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
TEXTS = ["Dull and awful.", "Loved it, brilliant!", "The worst waste of time.", "Superb."]


@pytest.fixture(scope="module")
def client(trained_model):
    config = ServeConfig(max_texts=5, max_text_chars=200, max_body_bytes=5_000)
    with TestClient(create_app(trained_model, config)) as client:
        yield client


def test_predict_has_the_shape_of_predict(client, trained_model):
    single = client.post("/predict", json={"text": TEXTS[1]})
    assert single.status_code == 200
    assert single.json() == pytest.approx(predict(TEXTS[1], model=trained_model))
    many = client.post("/predict", json={"text": TEXTS})
    expected = predict(TEXTS, model=trained_model)
    assert [r["label"] for r in many.json()] == [e["label"] for e in expected]
    assert [r["score"] for r in many.json()] == pytest.approx([e["score"] for e in expected])
    assert client.post("/predict", json={"text": []}).json() == []


def test_limits_and_bad_requests_are_clear_4xx(client):
    too_many = client.post("/predict", json={"text": ["fine"] * 6})
    assert too_many.status_code == 413 and "limit is 5" in too_many.json()["detail"]
    too_long = client.post("/predict", json={"text": ["fine", "x" * 201]})
    assert too_long.status_code == 413 and "position 1" in too_long.json()["detail"]
    empty = client.post("/predict", json={"text": "   "})
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    # /predict validates its body itself (sentiment.serve.app._direct_route): FastAPI's 422s
    wrong_type = client.post("/predict", json={"text": 42})
    assert wrong_type.status_code == 422
    assert {tuple(e["loc"][:2]) for e in wrong_type.json()["detail"]} == {("body", "text")}
    missing = client.post("/predict", json={"review": "good"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "text"]
    assert missing.json()["detail"][0]["type"] == "missing"
    not_json = client.post("/predict", content=b"not json",
                           headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and not_json.json()["detail"][0]["type"] == "json_invalid"
    assert client.post("/predict", json={"text": "fine", "neutral": "wide"}).status_code == 422
    # as FastAPI reads a JSON body: only a JSON content type is parsed, an empty body is a
    # missing one, and a body that breaks the parser otherwise is a 400, never a 500
    for headers in ({"content-type": "text/plain"}, {}):
        plain = client.post("/predict", content=b'{"text": "fine"}', headers=headers)
        assert plain.status_code == 422 and plain.json()["detail"][0]["loc"] == ["body"]
    suffixed = client.post("/predict", content=b'{"text": "fine"}',
                           headers={"content-type": "application/vnd.api+json"})
    assert suffixed.status_code == 200
    empty_body = client.post("/predict", content=b"", headers={"content-type": "application/json"})
    assert empty_body.status_code == 422 and empty_body.json()["detail"][0]["type"] == "missing"
    for broken in (b'{"text": "\xff"}', b"[" * 2_400 + b"]" * 2_400, b"1" * 4_400):
        answer = client.post("/predict", content=broken,  # not UTF-8, too deep, too long
                             headers={"content-type": "application/json"})
        assert answer.status_code == 400, broken[:20]
        assert answer.json()["detail"] == "There was an error parsing the body"
    # and its documentation is FastAPI's: the request and answer models
    documented = client.get("/openapi.json").json()
    post = documented["paths"]["/predict"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PredictRequest")
    assert "Prediction" in json.dumps(post["responses"]["200"])
    assert {"text", "neutral", "reading"} <= set(
        documented["components"]["schemas"]["PredictRequest"]["properties"])
    huge = client.post("/predict", json={"text": "y" * 6_000})
    assert huge.status_code == 413 and "body" in huge.json()["detail"]
    # sent in chunks without a Content-Length, a body is cut off at the limit too
    def chunks(count):
        yield b'{"text": "'
        for _ in range(count):
            yield b"y" * 1_000
        yield b'"}'

    for path in ("/predict", "/explain"):
        chunked = client.post(path, content=chunks(8), headers={"content-type": "application/json"})
        assert chunked.status_code == 413 and "limit of 5000" in chunked.json()["detail"]
    small = client.post("/predict", content=chunks(0), headers={"content-type": "application/json"})
    assert small.status_code == 422  # under the limit: read and judged (an empty text here)


def test_text_that_is_not_valid_unicode_is_scored(client, trained_model):
    """A lone surrogate is valid JSON ("\\ud800") but no encoding holds it: it is replaced by
    U+FFFD before tokenizing, in predict and in the server (whose connection stays usable)."""
    body = '{"text": ["good \\ud800 film", "awful \\udfff"]}'
    answer = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200
    assert answer.json() == predict(["good \ufffd film", "awful \ufffd"], model=trained_model)
    # alone, the text is a batch of one: the same answer, to float rounding (a CPU's matrix
    # kernels may round a batch of one and a batch of two differently in the last bits)
    alone, served = predict("good \ud800 film", model=trained_model), answer.json()[0]
    assert alone["label"] == served["label"] and alone.get("flag") == served.get("flag")
    assert alone["score"] == pytest.approx(served["score"], abs=1e-6)
    explained = client.post("/explain", content='{"text": "good \\ud800 film"}',
                            headers={"content-type": "application/json"})
    assert explained.status_code == 200
    assert client.get("/health").status_code == 200


def test_explain_names_the_words_that_pushed_the_label(client, trained_model):
    review = "the movie was long and the plot was dull and boring, the music was fine"
    body = client.post("/explain", json={"text": review}).json()
    expected = predict(review, model=trained_model)
    assert body["label"] == expected["label"] == "negative"
    assert body["score"] == pytest.approx(expected["score"], abs=0.02)  # float32 vs bf16
    assert [w["token"] for w in body["words"]] == review.replace(",", " ,").split()
    top = sorted(body["words"], key=lambda w: -w["weight"])[:2]
    assert {w["token"] for w in top} == {"dull", "boring"}
    assert max(abs(w["weight"]) for w in body["words"]) == pytest.approx(1.0)
    # integrated gradients account for the whole change of the logit from the baseline
    total = sum(w["attribution"] for w in body["words"])
    assert total == pytest.approx(body["logit"] - body["baseline_logit"], rel=0.05, abs=0.05)
    assert client.post("/explain", json={"text": " "}).status_code == 422
    assert client.post("/explain", json={"text": ["a", "b"]}).status_code == 422


def test_health_page_and_docs(client):
    import torch

    health = client.get("/health").json()
    assert health["status"] == "ok" and health["labels"] == ["negative", "positive"]
    assert health["workers"] == (2 if torch.get_num_threads() >= 2 else 1)  # CPU default
    page = client.get("/")
    assert page.status_code == 200 and 'id="review"' in page.text and "/predict" in page.text
    schema = client.get("/openapi.json").json()
    assert "/predict" in schema["paths"] and "/health" in schema["paths"]


def test_concurrent_requests_are_scored_together(trained_model):
    model = load_model(trained_model)
    texts = [f"{TEXTS[i % 4]} {i}" for i in range(40)]

    async def run() -> tuple[list, Batcher]:
        batcher = Batcher(model, max_batch=16, max_wait_ms=50)
        await batcher.start()
        try:
            results = await asyncio.gather(*(batcher.score([text]) for text in texts))
        finally:
            await batcher.stop()
        return results, batcher

    results, batcher = asyncio.run(run())
    expected = predict(texts, model=model)
    assert [r[0]["label"] for r in results] == [e["label"] for e in expected]
    assert [r[0]["score"] for r in results] == pytest.approx([e["score"] for e in expected])
    assert batcher.texts == 40 and batcher.batches <= 4  # 40 requests in batches of <= 16


def test_two_workers_score_batches_side_by_side_on_their_own_threads(trained_model, monkeypatch):
    import torch

    model = load_model(trained_model)
    texts = [f"{TEXTS[i % 4]} {i}" for i in range(40)]
    original, lock = model.score_encoded, threading.Lock()
    seen = {"inside": 0, "most": 0, "threads": set()}

    def slow_score(*args, **kwargs):
        with lock:
            seen["inside"] += 1
            seen["most"] = max(seen["most"], seen["inside"])
        seen["threads"].add(torch.get_num_threads())
        time.sleep(0.05)
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                seen["inside"] -= 1

    monkeypatch.setattr(model, "score_encoded", slow_score)  # the cached, shared model
    main_threads = torch.get_num_threads()

    async def run() -> tuple[list, Batcher]:
        batcher = Batcher(model, max_batch=8, max_wait_ms=1, workers=2, threads=1)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.score([text]) for text in texts)), batcher
        finally:
            await batcher.stop()

    results, batcher = asyncio.run(run())
    expected = predict(texts, model=load_model(trained_model))
    assert [r[0]["label"] for r in results] == [e["label"] for e in expected]
    assert [r[0]["score"] for r in results] == pytest.approx([e["score"] for e in expected])
    assert batcher.texts == 40 and seen["most"] == 2  # two batches in the model at once
    assert seen["threads"] == {1} and torch.get_num_threads() == main_threads
    with pytest.raises(ValueError, match="workers"):
        Batcher(model, workers=0)


def test_stopping_answers_every_waiting_request(trained_model, monkeypatch):
    model = load_model(trained_model)
    original = model.score_encoded

    def slow_score(*args, **kwargs):
        time.sleep(0.2)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "score_encoded", slow_score)  # the cached, shared model

    async def run() -> list:
        batcher = Batcher(model, max_batch=1, max_wait_ms=1, workers=1)
        await batcher.start()
        requests = [asyncio.ensure_future(batcher.score([text])) for text in TEXTS]
        await asyncio.sleep(0.05)  # one in the model, one waiting for the worker, two queued
        await batcher.stop()
        return await asyncio.wait_for(asyncio.gather(*requests, return_exceptions=True), 5)

    outcomes = asyncio.run(run())
    assert outcomes[0][0]["label"] == predict(TEXTS[0], model=trained_model)["label"]
    assert all(isinstance(o, Overloaded) and "stopping" in str(o) for o in outcomes[1:])


def model_that_breaks(trained_model, breaks, monkeypatch):
    """The trained model, loaded, whose scoring raises "model broke" when ``breaks(ids)``.
    ``load_model`` caches the model other tests share, so the patch is undone after the test."""
    model = load_model(trained_model)
    original = model.score_encoded

    def failing(ids, *args, **kwargs):
        if breaks(ids):
            raise RuntimeError("model broke")
        return original(ids, *args, **kwargs)

    monkeypatch.setattr(model, "score_encoded", failing)
    return model


def test_a_failing_batch_fails_its_requests_and_the_server_goes_on(trained_model, monkeypatch):
    model = model_that_breaks(trained_model, lambda ids: len(ids) == 3, monkeypatch)

    async def run():
        batcher = Batcher(model, max_batch=8, max_wait_ms=1, workers=2)
        await batcher.start()
        try:
            failed = await asyncio.gather(batcher.score(TEXTS[:3]), return_exceptions=True)
            return failed[0], await batcher.score(TEXTS[:2])
        finally:
            await batcher.stop()

    failed, later = asyncio.run(run())
    assert isinstance(failed, RuntimeError) and "model broke" in str(failed)
    assert [r["label"] for r in later] == [e["label"] for e in predict(TEXTS[:2],
                                                                       model=trained_model)]


def test_a_request_that_breaks_its_batch_fails_alone(trained_model, monkeypatch):
    poison = TEXTS[2]
    broken = list(load_model(trained_model).encode([poison])[0])
    model = model_that_breaks(trained_model,
                              lambda ids: any(list(seq) == broken for seq in ids), monkeypatch)

    async def run():
        batcher = Batcher(model, max_batch=64, max_wait_ms=200, workers=1)
        await batcher.start()
        try:
            requests = [[TEXTS[0]], [poison, TEXTS[1]], [TEXTS[3]]]
            outcomes = await asyncio.gather(*(batcher.score(r) for r in requests),
                                            return_exceptions=True)
            return outcomes, batcher.batches
        finally:
            await batcher.stop()

    (first, bad, last), batches = asyncio.run(run())
    assert batches == 0  # the three requests were one batch, and it failed
    assert isinstance(bad, RuntimeError) and "model broke" in str(bad)
    expected = predict([TEXTS[0], TEXTS[3]], model=trained_model)
    assert [first[0]["label"], last[0]["label"]] == [e["label"] for e in expected]
    assert first[0]["score"] == pytest.approx(expected[0]["score"], abs=1e-4)


def test_serve_command_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        commands.main(["serve", "--help"])
    assert exit_info.value.code == 0 and "--max-batch" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        commands.main(["serve", "--max-batch", "0"])
    assert "--max-batch must be >= 1" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def live_server(trained_model):
    """The app under uvicorn on a free local port, in a thread."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(trained_model), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@needs(CHROMIUM)  # Debian's chromium; .ci/run installs it
def test_page_in_a_real_browser(live_server, trained_model, tmp_path):
    from playwright import sync_api  # a test dependency: missing is a failure, not a skip

    review = "Loved it, brilliant! A superb, moving film."
    expected = predict(review, model=trained_model)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update"])
        try:
            page = browser.new_page()
            page.goto(live_server + "/")
            page.fill("#review", review)
            page.click("#classify")
            page.wait_for_selector("#label", timeout=15_000)
            assert page.inner_text("#label") == expected["label"] == "positive"
            assert f"{expected['score']:.3f}" in page.inner_text("#score")
            page.wait_for_selector("#explanation:not([hidden])", timeout=15_000)
            weights = {page.inner_text(f"#words .word >> nth={i}"):
                       float(page.get_attribute(f"#words .word >> nth={i}", "data-weight"))
                       for i in range(page.locator("#words .word").count())}
            assert max(weights, key=weights.get) in ("loved", "brilliant", "superb", "moving")
            page.fill("#review", "   ")
            page.click("#classify")
            page.wait_for_selector("#explanation[hidden]", state="attached", timeout=15_000)
            page.wait_for_selector("#result.error", timeout=15_000)
            assert "empty" in page.inner_text("#result")
            page.fill("#review", "qwerty zxcv uiop")  # no word the model knows: flagged
            page.click("#classify")
            page.wait_for_selector("#flag", timeout=15_000)
            assert "knows only 0% of these words" in page.inner_text("#flag")
            page.fill("#review", review)
            page.click("#classify")
            page.wait_for_selector("#label", timeout=15_000)
            page.screenshot(path=str(tmp_path / "page.png"))
        finally:
            browser.close()
    assert (tmp_path / "page.png").stat().st_size > 1_000


def test_metrics_and_readiness(trained_model):
    with TestClient(create_app(trained_model)) as client:
        assert client.get("/ready").json() == {"ready": True}
        client.post("/predict", json={"text": TEXTS[:3]})
        client.post("/predict", json={"text": ""})
        text = client.get("/metrics").text
        assert 'sentiment_requests_total{endpoint="/predict",status="200"} 1.0' in text
        assert 'sentiment_requests_total{endpoint="/predict",status="422"} 1.0' in text
        assert "sentiment_texts_scored_total 3.0" in text
        assert "sentiment_batch_texts_count 1.0" in text
        assert "sentiment_queue_texts 0.0" in text
        assert 'sentiment_request_seconds_count{endpoint="/predict"} 2.0' in text
        batcher = client.app.state.batcher
    assert not batcher.ready  # stopped with the app
    with TestClient(create_app(trained_model, ServeConfig(metrics=False))) as client:
        assert client.post("/predict", json={"text": TEXTS[0]}).status_code == 200
        assert client.get("/metrics").status_code == 404


def test_an_api_key_guards_everything_but_the_probes(trained_model, caplog, monkeypatch):
    from sentiment.serve import app as serve_module

    app = create_app(trained_model, ServeConfig(api_key="s3cret"))
    with TestClient(app) as client:
        body = {"text": TEXTS[0]}
        assert client.post("/predict", json=body).status_code == 401
        wrong = client.post("/predict", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        right = client.post("/predict", json=body, headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200
        assert client.get("/metrics").status_code == 401 and client.get("/").status_code == 401
        assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200
    # binding beyond loopback without a key is allowed, with a warning
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: None)
    with caplog.at_level("WARNING"):
        serve_module.serve(trained_model, host="0.0.0.0")
    assert "without an API key" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        serve_module.serve(trained_model, host="127.0.0.1")
        serve_module.serve(trained_model, host="0.0.0.0", config=ServeConfig(api_key="k"))
    assert "without an API key" not in caplog.text


def test_refusals_and_failures_are_counted_with_their_status(trained_model, monkeypatch):
    """The guard is a plain ASGI middleware: what it refuses itself (401, 413) and what the app
    fails on (500) reach the request metrics with their status, as answered requests do."""
    model = load_model(trained_model)
    app = create_app(model, ServeConfig(api_key="k", max_body_bytes=200))
    key = {"Authorization": "Bearer k"}
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/predict", json={"text": TEXTS[0]}).status_code == 401
        assert client.post("/predict", json={"text": "x" * 300}, headers=key).status_code == 413
        monkeypatch.setattr(model, "answers", None)  # the handler breaks: a 500
        assert client.post("/predict", json={"text": TEXTS[0]}, headers=key).status_code == 500
        text = client.get("/metrics", headers=key).text
    for status in (401, 413, 500):
        assert f'sentiment_requests_total{{endpoint="/predict",status="{status}"}} 1.0' in text
    assert 'sentiment_request_seconds_count{endpoint="/predict"} 3.0' in text


def test_the_access_log_can_be_turned_off(trained_model, monkeypatch):
    from sentiment.serve import app as serve_module

    calls = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: calls.append(kwargs))
    serve_module.serve(trained_model)
    serve_module.serve(trained_model, config=ServeConfig(access_log=False))
    assert [call["access_log"] for call in calls] == [True, False]


def slowed(trained_model, monkeypatch, seconds=0.3):
    model = load_model(trained_model)
    original = model.score_encoded

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "score_encoded", slow)  # the cached model: undone after the test
    return model


def test_a_full_queue_answers_503_with_retry_after(trained_model, monkeypatch):
    model = slowed(trained_model, monkeypatch)
    app = create_app(model, ServeConfig(max_batch=1, workers=1, max_queue=2, max_wait_ms=0))
    with TestClient(app) as client:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda t: client.post("/predict", json={"text": t}),
                                    [f"{TEXTS[i % 4]} {i}" for i in range(8)]))
        codes = [a.status_code for a in answers]
        assert 200 in codes and 503 in codes and set(codes) <= {200, 503}
        busy = next(a for a in answers if a.status_code == 503)
        assert busy.headers["retry-after"] == "1" and "waiting" in busy.json()["detail"]
        assert f'sentiment_rejected_total{{reason="overloaded"}} {codes.count(503)}.0' in \
            client.get("/metrics").text


def recorded(model, monkeypatch, seconds=lambda texts: 0.0) -> list[str]:
    """The texts ``model.score`` is called with, in order, as it is called (each call first
    sleeps ``seconds(texts)``); undone after the test."""
    scored = []
    original = model.score

    def recording(texts, *args, **kwargs):
        scored.extend(texts)
        time.sleep(seconds(texts))
        return original(texts, *args, **kwargs)

    monkeypatch.setattr(model, "score", recording)
    return scored


def test_a_request_whose_client_left_is_not_scored(trained_model, monkeypatch):
    model = slowed(trained_model, monkeypatch, 0.2)
    scored = recorded(model, monkeypatch)

    async def run():
        batcher = Batcher(model, max_batch=1, max_wait_ms=0, workers=1)
        await batcher.start()
        try:
            first = asyncio.ensure_future(batcher.score(["kept in the model"]))
            await asyncio.sleep(0.05)

            async def gone() -> bool:
                return True

            with pytest.raises(asyncio.CancelledError):
                await batcher.score(["the client left"], gone)
            await first
            await batcher.score(["after"])
        finally:
            await batcher.stop()

    asyncio.run(run())
    assert scored == ["kept in the model", "after"]


def test_fastapi_telemetry_is_off_unless_asked_for(trained_model):
    assert not create_app(trained_model)._native_telemetry.config["tracing"]
    on = create_app(trained_model, ServeConfig(telemetry=True))._native_telemetry.config
    assert on["tracing"] and on["metrics"] and on["logs"]


def test_a_waiting_client_is_asked_whether_it_left_only_after_a_tenth_of_a_second(
        trained_model, monkeypatch):
    """A request answered sooner never polls its connection; a long wait polls it every 0.1 s,
    and a client that leaves during it is dropped at the next poll, before it is scored."""
    model, polls = load_model(trained_model), []
    scored = recorded(model, monkeypatch, lambda texts: 0.35 if texts == ["first"] else 0)

    async def run():
        batcher = Batcher(model, max_batch=1, max_wait_ms=0, workers=1)
        await batcher.start()
        try:
            async def still_there() -> bool:
                polls.append("there")
                return False

            async def leaves_at_the_second_poll() -> bool:
                polls.append("leaving")
                return polls.count("leaving") >= 2

            first = asyncio.ensure_future(batcher.score(["first"], still_there))
            await asyncio.sleep(0.02)
            with pytest.raises(asyncio.CancelledError):
                await batcher.score(["left"], leaves_at_the_second_poll)
            assert len(await first) == 1
            quick_polls = len(polls)

            async def counted() -> bool:
                polls.append("quick")
                return False

            assert len(await batcher.score(["quick"], counted)) == 1
            assert len(polls) == quick_polls  # answered within 0.1 s: never asked
        finally:
            await batcher.stop()

    asyncio.run(run())
    assert scored == ["first", "quick"] and polls.count("leaving") == 2
    assert 2 <= polls.count("there") <= 4


def test_explanations_are_bounded_and_never_hold_up_predict(trained_model, monkeypatch):
    config = ServeConfig(max_explain_tokens=8, max_explanations=1)
    with TestClient(create_app(trained_model, config)) as client:
        long = " ".join([TEXTS[0]] * 20)
        answer = client.post("/explain", json={"text": long}).json()
        assert answer["truncated"] and answer["explained_tokens"] == 8 == len(answer["words"])
        assert answer["total_tokens"] > 8
        short = client.post("/explain", json={"text": TEXTS[0]}).json()
        assert not short["truncated"]

    # a slow explanation runs on its own copy and thread: predict answers meanwhile
    from sentiment.kinds import explain as explain_module

    original = explain_module.explain

    def slow_explain(*args, **kwargs):
        time.sleep(1.5)
        return original(*args, **kwargs)

    monkeypatch.setattr(explain_module, "explain", slow_explain)
    with TestClient(create_app(trained_model, config)) as client:
        with ThreadPoolExecutor(4) as pool:
            explaining = [pool.submit(client.post, "/explain", json={"text": TEXTS[1]})
                          for _ in range(3)]
            time.sleep(0.3)
            start = time.perf_counter()
            assert client.post("/predict", json={"text": TEXTS[2]}).status_code == 200
            assert time.perf_counter() - start < 1.0
            codes = sorted(f.result().status_code for f in explaining)
        assert codes == [200, 200, 503]  # one running, one waiting, the third turned away


def test_a_real_server_sheds_load_then_stops_on_sigterm(trained_model):
    """A real server process on 127.0.0.1: a burst past --max-queue is answered 503 with
    Retry-After; then SIGTERM while requests are in flight and queued: each gets an HTTP
    answer (uvicorn lets every open request finish; one that could not reach a worker gets a
    503, tested on the batcher above), none a dropped connection, and the process exits with
    the signal's status. No request body reaches the server's log."""
    import signal
    import subprocess
    import sys

    import httpx

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sentiment", "serve", "--model", str(trained_model), "--port",
         str(port), "--workers", "1", "--max-batch", "1", "--max-wait-ms", "0",
         "--max-queue", "24"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    marker = "unforgettable-marker-review"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/ready", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        long = f"{marker} " + " ".join(TEXTS * 400)[:40_000]

        def burst(count: int, stop: bool = False) -> list:
            with ThreadPoolExecutor(count) as pool:
                futures = [pool.submit(httpx.post, base + "/predict",
                                       json={"text": [long] * 8}, timeout=60)
                           for _ in range(count)]
                if stop:
                    time.sleep(0.5)
                    server.send_signal(signal.SIGTERM)
                return [f.result() for f in futures]  # an httpx error: a dropped request

        shed = burst(12)
        codes = [a.status_code for a in shed]
        assert 200 in codes and 503 in codes and set(codes) <= {200, 503}, codes
        busy = next(a for a in shed if a.status_code == 503)
        assert busy.headers["retry-after"] == "1" and "waiting" in busy.json()["detail"]
        stopped = burst(3, stop=True)
        assert {a.status_code for a in stopped} <= {200, 503} and stopped[0].status_code == 200
        assert server.wait(timeout=30) in (-signal.SIGTERM, 128 + signal.SIGTERM, 0)
        assert marker not in server.stdout.read()
    finally:
        if server.poll() is None:
            server.kill()


def test_requests_waiting_together_are_shared_among_the_idle_workers(trained_model,
                                                                      monkeypatch):
    """A closed loop of clients all waiting at once would otherwise be one batch on one worker
    while the other idles: every idle worker takes a share, balanced by characters, each
    request whole and in arrival order."""
    from sentiment.serve.batcher import _shares

    waiting = [([text], f"request {i}") for i, text in enumerate(
        ["a" * 90, "b" * 10, "c" * 40, "d" * 50, "e" * 10])]
    shares = _shares(waiting, 2)
    assert sorted(item for share in shares for item in share) == sorted(waiting)
    assert [sum(len(text) for texts, _ in share for text in texts) for share in shares] == [
        100, 100]
    assert all(share == sorted(share, key=waiting.index) for share in shares)
    assert _shares(waiting, 1) == [waiting] and len(_shares(waiting[:1], 1)) == 1
    empty = [([""], "a"), ([], "b"), (["x"], "c")]  # every share a worker's: none left empty
    assert sorted(map(len, _shares(empty, 3))) == [1, 1, 1]

    model = load_model(trained_model)
    batches, running, most = [], [0], [0]
    lock = threading.Lock()
    original = model.score

    def recording(texts, *args, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            batches.append(list(texts))
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return original(texts, *args, **kwargs)

    monkeypatch.setattr(model, "score", recording)

    async def run():
        batcher = Batcher(model, max_batch=64, max_wait_ms=20, workers=2)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.score([f"{TEXTS[i % 4]} {i}"])
                                          for i in range(6)))
        finally:
            await batcher.stop()

    answers = asyncio.run(run())
    assert len(answers) == 6 and all(len(a) == 1 for a in answers)
    assert most[0] == 2 and len(batches) == 2 and sorted(map(len, batches)) == [3, 3]

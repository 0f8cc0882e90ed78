"""``sentiment serve``: a FastAPI app around :func:`~sentiment.inference.predict.predict`.

    POST /predict   {"text": "A wonderful film"}          -> {"label": ..., "score": ...}
                    {"text": ["Great", "Awful", ...]}      -> [{"label": ..., "score": ...}, ...]
    POST /explain   {"text": "A dull film"}  -> label, score and each word's push ("words")
    GET  /health    liveness: model, labels, device
    GET  /ready     readiness: 200 once the model is loaded and the batcher runs, 503 while
                    stopping
    GET  /metrics   Prometheus metrics
    GET  /          a page: paste a review, see its label and score
    GET  /docs      the OpenAPI documentation (FastAPI's)

Requests that arrive together are scored together (dynamic batching, in
:mod:`~sentiment.serve.batcher`): a :class:`~sentiment.serve.batcher.Batcher` takes the texts of
every request waiting in its queue, up to ``max_batch`` texts, waits at most ``max_wait_ms`` for
more, scores them in one call on a worker thread and hands each request its own results. Throughput
under many clients thus approaches ``predict``'s batch throughput instead of one forward pass per
request. At most ``max_queue`` texts wait: past that a request is answered 503 with ``Retry-After``,
and a request whose client went away is dropped from the queue unscored. Explanations run on a copy
of the model on a thread of their own, explain at most ``max_explain_tokens`` tokens and queue
behind ``max_explanations`` others, so they never hold up ``/predict``. With an API key every path
but ``/health`` and ``/ready`` needs ``Authorization: Bearer KEY``. Needs the ``serve``
extra (``pip install 'sentiment-lstm[serve]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import hmac
import ipaddress
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..inference.answers import answer, neutral_band
from ..kinds.protocol import CapabilityError, TextClassifier, require, supports
from ..kinds.registry import QUANTIZE, load_model
from ..runtime.workers import default_workers
from .batcher import Batcher, Explainer, Overloaded
from .metrics import Metrics

logger = logging.getLogger(__name__)

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from fastapi.routing import APIRoute
    from pydantic import BaseModel, Field, ValidationError
except ImportError:  # pragma: no cover - exercised only without the extra
    FastAPI = None
else:
    class PredictRequest(BaseModel):
        """One review, or a list of reviews."""

        text: str | list[str] = Field(
            description="one review, or a list of reviews",
            examples=["A wonderful, moving film.", ["Great acting.", "A dull mess."]])
        neutral: float | tuple[float, float] | None | str = Field(
            default="default", description="the band answered 'neutral': the model's own "
            "('default'), a half-width w for (0.5 - w, 0.5 + w), a [low, high] pair, or null")
        reading: bool = Field(default=False, description="give every answer the share of its "
                                                         "words the model knows ('known')")

    class ExplainRequest(BaseModel):
        """One review to explain."""

        text: str = Field(description="one review", examples=["A dull film with one great scene."])

    class Word(BaseModel):
        """A token and how much it pushed the label (> 0 toward it, strongest ±1)."""

        token: str
        weight: float
        attribution: float

    class Explanation(BaseModel):
        """A label, its probability, and each word's push (integrated gradients) over the first
        ``explained_tokens`` of the text's ``total_tokens``."""

        label: str
        score: float
        logit: float
        baseline_logit: float
        words: list[Word]
        explained_tokens: int
        total_tokens: int
        truncated: bool
        route: int | None = Field(default=None, description="a routed model's member that "
                                  "scored and explained it (its place in routed.json)")

    class Prediction(BaseModel):
        """A label and the probability of that label (``neutral``: of the label it leans to);
        ``flag`` ``unreadable`` and ``known`` where the model knows too few of its words."""

        label: str
        score: float
        known: float | None = None
        flag: str | None = None


def _help(text: str, choices: tuple | None = None, **kwargs):
    return field(**kwargs, metadata={"help": text, **({"choices": choices} if choices else {})})


@dataclass
class ServeConfig:
    """Limits and batching of the server (each a ``sentiment serve`` option)."""

    max_text_chars: int = _help("characters allowed in one text (IMDB's longest: ~14k)",
                                default=50_000)
    max_texts: int = _help("texts allowed in one request", default=256)
    max_body_bytes: int = _help("bytes allowed in one request body", default=2_000_000)
    max_batch: int = _help("texts scored together at most", default=64)
    # a served batch is reviews of random lengths: scored as one batch, a few long ones would
    # pad all the short ones (BENCHMARKS.md)
    max_tokens: int | None = _help("padded tokens scored together at most", default=8_192)
    max_wait_ms: float = _help("how long a lone request waits for others to batch with",
                               default=5.0)
    workers: int | None = _help("batches scored at once, each on its share of the CPU "
                                "threads (none: 2 on a CPU, 1 on a GPU)", default=None)
    max_queue: int | None = _help("texts allowed to wait for a worker; past it a 503 with "
                                  "Retry-After (none: 8 batches' worth)", default=None)
    max_explain_chars: int = _help("characters allowed in a text to explain", default=20_000)
    max_explain_tokens: int = _help("tokens an explanation covers at most (the first ones; "
                                    "the answer says so)", default=512)
    max_explanations: int = _help("explanations allowed to wait; past it a 503", default=4)
    metrics: bool = _help("keep Prometheus metrics and serve them at /metrics", default=True)
    quantize: str = _help("int8: the LSTMs with dynamic int8 weights, on the CPU",
                          choices=QUANTIZE, default="none")
    access_log: bool = _help("log a line per request (uvicorn's access log)", default=True)
    # off, a request skips FastAPI's check for configured providers (8% of its fixed cost)
    telemetry: bool = _help("FastAPI's native OpenTelemetry traces, metrics and logs, sent to "
                            "the providers your OpenTelemetry setup configures", default=False)
    api_key: str | None = _help("a key every request but /health and /ready must send as "
                                "'Authorization: Bearer KEY'; $SENTIMENT_API_KEY sets it too",
                                default=None)

    def __post_init__(self) -> None:
        for name in ("max_text_chars", "max_texts", "max_body_bytes", "max_batch", "max_tokens",
                     "workers", "max_queue", "max_explain_chars", "max_explain_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.max_explanations < 0 or self.max_wait_ms < 0:
            raise ValueError("max_explanations and max_wait_ms must be >= 0")
        if self.quantize not in QUANTIZE:
            raise ValueError(f"quantize must be one of {QUANTIZE}, not {self.quantize!r}")


PAGE = Path(__file__).parent / "page.html"
NEEDS_EXTRA = "sentiment serve needs FastAPI and uvicorn: pip install 'sentiment-lstm[serve]'"
OPEN_PATHS = ("/health", "/ready")  # probes answer without an API key
ENDPOINTS = ("/", "/predict", "/explain", *OPEN_PATHS, "/metrics", "/docs", "/openapi.json")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(model: str | Path | TextClassifier | None = None,
               config: ServeConfig | None = None) -> FastAPI:
    """The app serving ``model`` (a folder, a loaded model, or the default model)."""
    if FastAPI is None:
        raise ImportError(NEEDS_EXTRA)
    config = config or ServeConfig()
    page_html = PAGE.read_text(encoding="utf-8")
    loaded = (load_model(model, quantize=config.quantize)
              if model is None or isinstance(model, (str, Path)) else model)
    batcher = Batcher(loaded, config.max_batch, config.max_wait_ms, config.max_tokens,
                      config.workers or default_workers(loaded.device),
                      max_queue=config.max_queue)
    metrics = Metrics(batcher)
    if config.metrics:
        batcher.on_batch = metrics.scored
    explainer = (Explainer(loaded, config.max_explain_tokens, config.max_explanations)
                 if supports(loaded, "explain") else None)
    app = FastAPI(title="sentiment", lifespan=_lifespan(batcher, explainer),
                  description="Sentiment of movie reviews with an LSTM classifier.",
                  telemetry=None if config.telemetry else dict.fromkeys(
                      ("tracing", "metrics", "logs"), False))
    app.state.batcher = batcher
    app.state.metrics = metrics
    _add_guard(app, config, batcher, metrics)
    _add_predict(app, config, batcher, metrics)
    _add_explain(app, config, loaded, batcher, explainer, metrics)
    _add_probes(app, loaded, batcher)
    _add_metrics_and_page(app, config, metrics, page_html)
    return app


def _lifespan(batcher: Batcher, explainer: Explainer | None):
    """The app's lifespan: the batcher runs while the app does; both stop with it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()
        if explainer is not None:
            explainer.stop()

    return lifespan


def _refusal(request: Request, config: ServeConfig, expected: bytes | None) -> Response | None:
    """The 401 of a request without the API key, or the 413 of a body over the limit; else
    None."""
    length = request.headers.get("content-length")
    if expected is not None and request.url.path not in OPEN_PATHS and not hmac.compare_digest(
            request.headers.get("authorization", "").encode(), expected):
        return JSONResponse(status_code=401, headers={"WWW-Authenticate": "Bearer"},
                            content={"detail": "a valid 'Authorization: Bearer KEY' "
                                               "header is required"})
    if length is not None and length.isdigit() and int(length) > config.max_body_bytes:
        return JSONResponse(status_code=413, content={
            "detail": f"request body of {length} bytes is over the limit of "
                      f"{config.max_body_bytes}"})
    return None


def _bounded(receive, limit: int):
    """``receive`` for a body sent without a ``Content-Length`` (chunked): a 413 as soon as it
    passes ``limit`` bytes, before the rest is read (the 413 of a declared length is
    :func:`_refusal`'s)."""
    received = 0

    async def bounded():
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"request body over the limit of {limit} bytes")
        return message

    return bounded


class _Guard:
    """The middleware around every request (a plain ASGI one: Starlette's ``@app.middleware``
    runs each request through task groups and memory streams, which cost the fast models a
    third of their served throughput, BENCHMARKS.md): the API key, the body limit, and the
    request metrics (bodies are never logged)."""

    def __init__(self, app, config: ServeConfig, expected: bytes | None, metrics: Metrics):
        self.app, self.config, self.expected, self.metrics = app, config, expected, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # unless the app answers: an exception becomes Starlette's 500

        async def sending(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            response = _refusal(Request(scope), self.config, self.expected)
            if response is None:
                if not any(name == b"content-length" for name, _ in scope["headers"]):
                    receive = _bounded(receive, self.config.max_body_bytes)  # chunked
                await self.app(scope, receive, sending)
            else:
                await response(scope, receive, sending)
        finally:
            if self.config.metrics:
                path = scope["path"]
                endpoint = path if path in ENDPOINTS else "other"
                self.metrics.requests.labels(endpoint, str(status)).inc()
                self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


def _add_guard(app: FastAPI, config: ServeConfig, batcher: Batcher, metrics: Metrics) -> None:
    """The middleware around every request, and the 503 of :class:`Overloaded`."""
    expected = f"Bearer {config.api_key}".encode() if config.api_key else None
    app.add_middleware(_Guard, config=config, expected=expected, metrics=metrics)

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, error: Overloaded):
        metrics.rejected.labels("stopping" if batcher.stopping else "overloaded").inc()
        return JSONResponse(status_code=503, headers={"Retry-After": "1"},
                            content={"detail": str(error)})


def _check_texts(texts: list[str], single: bool, config: ServeConfig) -> None:
    """Raise the 413 or 422 of a request over the limits or with an empty text."""
    if len(texts) > config.max_texts:
        raise HTTPException(413, f"{len(texts)} texts in one request; the limit is "
                                 f"{config.max_texts}")
    for position, text in enumerate(texts):
        where = "" if single else f" at position {position}"
        if not text.strip():
            raise HTTPException(422, f"text{where} is empty or whitespace only")
        if len(text) > config.max_text_chars:
            raise HTTPException(413, f"text{where} has {len(text)} characters; the limit "
                                     f"is {config.max_text_chars}")


async def _json_body(request: Request):
    """The request's body as FastAPI reads a JSON body: parsed only when its content type is
    JSON (``application/json`` or ``*+json``; else the raw bytes, which fail validation: a
    422), a 422 ``missing`` when empty, a 422 ``json_invalid`` when it does not parse, a 400
    for anything else that breaks the parse (bytes that are not UTF-8, a number too long, nesting
    too deep, a client gone mid-upload)."""
    try:
        raw = await request.body()
        if not raw:
            raise RequestValidationError([{"type": "missing", "loc": ("body",),
                                           "msg": "Field required", "input": None}])
        message = email.message.Message()
        message["content-type"] = request.headers.get("content-type", "")
        subtype = message.get_content_subtype()
        if message.get_content_maintype() != "application" or not (
                subtype == "json" or subtype.endswith("+json")):
            return raw
        return json.loads(raw)  # Python's parser, as FastAPI's: it keeps a lone "\ud800"
    except json.JSONDecodeError as error:
        raise RequestValidationError([{
            "type": "json_invalid", "loc": ("body", error.pos), "msg": "JSON decode error",
            "input": {}, "ctx": {"error": error.msg}}]) from None
    except (HTTPException, RequestValidationError):
        raise
    except Exception:  # noqa: BLE001 - FastAPI's answer to a body it cannot parse
        raise HTTPException(400, "There was an error parsing the body") from None


def _direct_route(body_model: type[BaseModel]) -> type[APIRoute]:
    """A route documented by its endpoint as any FastAPI route (``/docs`` shows its request
    and response models) and served without FastAPI's per-request machinery: the body is
    parsed and validated by ``body_model`` (a 422 as FastAPI gives it) and
    the endpoint, called with it and the request, returns the response itself. That machinery
    (dependency solving, response validation) was a third of a request's fixed cost
    (BENCHMARKS.md): what bounds the fast models' served throughput."""

    class DirectRoute(APIRoute):
        def get_route_handler(self):
            endpoint = self.endpoint

            async def handler(request: Request) -> Response:
                try:
                    body = body_model.model_validate(await _json_body(request))
                except ValidationError as error:
                    raise RequestValidationError(
                        [{**found, "loc": ("body", *found["loc"])}
                         for found in error.errors(include_url=False)]) from None
                return await endpoint(body, request)

            return handler

    return DirectRoute


def _add_predict(app: FastAPI, config: ServeConfig, batcher: Batcher, metrics: Metrics) -> None:
    """POST /predict."""

    async def predict(body: PredictRequest, request: Request) -> Response:
        """The label and score of one text, or of each text of a list (in order)."""
        single = isinstance(body.text, str)
        texts = [body.text] if single else body.text
        _check_texts(texts, single, config)
        if not texts:
            return JSONResponse([])
        try:
            neutral_band(body.neutral, batcher.model.answers)  # refused before it is scored
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        try:
            results = await batcher.score(texts, request.is_disconnected)
        except asyncio.CancelledError:
            metrics.rejected.labels("disconnected").inc()
            raise
        try:
            results = answer(results, texts, batcher.model, body.neutral, body.reading)
        except ValueError as error:  # a band asked of a model of more than two labels
            raise HTTPException(422, str(error)) from None
        return JSONResponse(results[0] if single else results)

    app.router.add_api_route("/predict", predict, methods=["POST"],
                             response_model=Prediction | list[Prediction],
                             response_model_exclude_none=True,
                             route_class_override=_direct_route(PredictRequest))


def _add_explain(app: FastAPI, config: ServeConfig, loaded: TextClassifier, batcher: Batcher,
                 explainer: Explainer | None, metrics: Metrics) -> None:
    """POST /explain (a 422 where the model cannot explain)."""

    @app.post("/explain", response_model=Explanation, response_model_exclude_none=True)
    async def explain(request: ExplainRequest):
        """The label and score of one text and which words pushed it there: integrated
        gradients of the label's logit over the word embeddings (``weight`` scaled so that the
        strongest word is ±1; the raw ``attribution``s add up to ``logit - baseline_logit``),
        over the text's first ``max_explain_tokens`` tokens."""
        text = request.text
        if not text.strip():
            raise HTTPException(422, "text is empty or whitespace only")
        if len(text) > config.max_explain_chars:
            raise HTTPException(413, f"text has {len(text)} characters; the limit for "
                                     f"explanations is {config.max_explain_chars}")
        if explainer is None:
            try:
                require(loaded, "explain", "POST /predict scores it")
            except CapabilityError as error:
                raise HTTPException(422, str(error)) from None
        if batcher.stopping:
            raise Overloaded("the server is stopping")
        with metrics.explain.time():
            return await explainer.explain(text)


def _add_probes(app: FastAPI, loaded: TextClassifier, batcher: Batcher) -> None:
    """GET /health and GET /ready."""

    @app.get("/health")
    async def health():
        """Liveness: the server is up, and what it serves."""
        return {"status": "ok", "model": loaded.path or "(in memory)", "labels": loaded.labels,
                "device": str(loaded.device), "workers": batcher.workers,
                "batches": batcher.batches, "texts": batcher.texts, "queued": batcher.queued}

    @app.get("/ready")
    async def ready():
        """Readiness: 200 once the model is loaded and the batcher runs; 503 while stopping."""
        if not batcher.ready:
            return JSONResponse(status_code=503, content={"ready": False})
        return {"ready": True}


def _add_metrics_and_page(app: FastAPI, config: ServeConfig, metrics: Metrics,
                          page_html: str) -> None:
    """GET /metrics (a 404 with metrics off) and GET /, the page."""

    @app.get("/metrics", include_in_schema=False)
    async def prometheus():
        if not config.metrics:
            raise HTTPException(404, "metrics are off (--no-metrics)")
        body, content_type = metrics.exposition()
        return Response(content=body, media_type=content_type)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return page_html


def serve(model: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000,
          config: ServeConfig | None = None, log_level: str = "info") -> None:
    """Run the app with uvicorn until interrupted (SIGTERM: the requests in flight are
    answered, those still queued get a 503, then the process exits)."""
    try:
        import uvicorn
    except ImportError:
        raise ImportError(NEEDS_EXTRA) from None
    config = config or ServeConfig()
    if not config.api_key and not _is_loopback(host):
        logger.warning("serving on %s without an API key: anyone who can reach it can use it "
                       "(--api-key or SENTIMENT_API_KEY)", host)
    app = create_app(model, config)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=config.access_log)

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

Requests that arrive together are scored together (dynamic batching): a :class:`Batcher` takes
the texts of every request waiting in its queue, up to ``max_batch`` texts, waits at most
``max_wait_ms`` for more, scores them in one call on a worker thread and hands each request its
own results. Throughput under many clients thus approaches ``predict``'s batch throughput
instead of one forward pass per request. At most ``max_queue`` texts wait: past that a request
is answered 503 with ``Retry-After``, and a request whose client went away is dropped from the
queue unscored. Explanations run on a copy of the model on a thread of their own, explain at
most ``max_explain_tokens`` tokens and queue behind ``max_explanations`` others, so they never
hold up ``/predict``. With an API key every path but ``/health`` and ``/ready`` needs
``Authorization: Bearer KEY``. Needs the ``serve`` extra (``pip install sentiment[serve]``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hmac
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..kinds.protocol import CapabilityError, TextClassifier, require, supports
from ..kinds.registry import QUANTIZE, load_model
from ..runtime.workers import default_workers, worker_pool

logger = logging.getLogger(__name__)

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, Field
except ImportError:  # pragma: no cover - exercised only without the extra
    FastAPI = None
else:
    class PredictRequest(BaseModel):
        """One review, or a list of reviews."""

        text: str | list[str] = Field(
            description="one review, or a list of reviews",
            examples=["A wonderful, moving film.", ["Great acting.", "A dull mess."]])

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

    class Prediction(BaseModel):
        """A label and the probability of that label."""

        label: str
        score: float


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


class Overloaded(Exception):
    """The server cannot take this request now (queue full, or stopping): a 503."""


def _answer(future: asyncio.Future, result=None, error: BaseException | None = None) -> None:
    """Hand a request its result or error, unless its client went away (a cancelled future)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Batcher:
    """Collects texts from concurrent requests and scores them in batches on worker threads.

    A batch is formed only when a worker is free, from everything waiting then (up to
    ``max_batch`` texts), so that the queue grows into larger batches while the workers are
    busy. With ``workers`` > 1 each worker runs torch on ``threads`` threads of its own
    (:func:`~sentiment.runtime.workers.worker_pool`), and one worker's model runs while another
    tokenizes (spaCy holds the GIL: the model's tokenizing is one thread at a time, its forward
    pass is not).
    """

    def __init__(self, model: TextClassifier, max_batch: int = 64, max_wait_ms: float = 5.0,
                 max_tokens: int | None = None, workers: int = 1, threads: int | None = None,
                 max_queue: int | None = None,
                 on_batch: Callable[[int], None] | None = None):
        self.worker = worker_pool(workers, "sentiment-batch", threads)
        self.model, self.max_batch, self.max_wait = model, max_batch, max_wait_ms / 1000
        self.max_tokens, self.workers = max_tokens, workers
        self.max_queue = max_queue or 8 * max_batch * workers
        self.on_batch = on_batch or (lambda size: None)
        self.queue: asyncio.Queue = asyncio.Queue()
        self.queued = 0  # texts in the queue, not yet taken into a batch
        self.free = asyncio.Semaphore(workers)
        self.task: asyncio.Task | None = None
        self.stopping = False
        self.running: set[asyncio.Task] = set()
        self.batches = self.texts = 0  # counters, shown by /health

    @property
    def ready(self) -> bool:
        return self.task is not None and not self.task.done() and not self.stopping

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self.stopping = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)
        while not self.queue.empty():  # requests that never reached a worker
            _, future = self._take()
            _answer(future, error=Overloaded("the server is stopping"))
        self.worker.shutdown(wait=True)

    async def score(self, texts: list[str],
                    disconnected: Callable[[], Awaitable[bool]] | None = None) -> list[dict]:
        """The results for ``texts``, scored together with whatever else is waiting. Raises
        :class:`Overloaded` when ``max_queue`` texts already wait or the server is stopping;
        ``disconnected``: polled while waiting, and a request whose client went away leaves
        the queue unscored (``asyncio.CancelledError``)."""
        if self.stopping:
            raise Overloaded("the server is stopping")
        if self.queued + len(texts) > self.max_queue:
            raise Overloaded(f"{self.queued} texts are waiting to be scored (the limit is "
                             f"{self.max_queue}); try again shortly")
        future = asyncio.get_running_loop().create_future()
        self.queued += len(texts)
        self.queue.put_nowait((texts, future))
        while disconnected is not None and not future.done():
            await asyncio.wait({future}, timeout=0.1)
            if not future.done() and await disconnected():
                future.cancel()  # _run skips it
        return await future

    def _take(self) -> tuple[list[str], asyncio.Future]:
        texts, future = self.queue.get_nowait()
        self.queued -= len(texts)
        return texts, future

    async def _next(self) -> tuple[list[str], asyncio.Future]:
        """The next waiting request whose client is still there."""
        while True:
            texts, future = await self.queue.get()
            self.queued -= len(texts)
            if not future.cancelled():
                return texts, future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            waiting = [await self._next()]
            try:
                await self.free.acquire()  # the queue keeps filling while every worker is busy
            except asyncio.CancelledError:
                self.queued += len(waiting[0][0])
                self.queue.put_nowait(waiting[0])  # stop() answers it
                raise
            size = len(waiting[0][0])
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                try:
                    item = await asyncio.wait_for(self._next(), deadline - loop.time())
                except TimeoutError:
                    break
                waiting.append(item)
                size += len(item[0])
            waiting = [item for item in waiting if not item[1].cancelled()]  # clients gone
            if not waiting:
                self.free.release()
                continue
            task = asyncio.create_task(self._score(waiting))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _score(self, waiting: list) -> None:
        loop = asyncio.get_running_loop()
        texts = [text for request, _ in waiting for text in request]
        try:
            results = await loop.run_in_executor(self.worker, self._predict, texts)
        except Exception as error:  # noqa: BLE001 - handed to the request(s) it came from
            if len(waiting) == 1:
                _answer(waiting[0][1], error=error)
            else:  # the failure may belong to one request's texts
                await self._score_each(waiting)
            return
        finally:
            self.free.release()
        self.batches, self.texts = self.batches + 1, self.texts + len(texts)
        self.on_batch(len(texts))
        start = 0
        for request, future in waiting:
            _answer(future, results[start : start + len(request)])
            start += len(request)

    async def _score_each(self, waiting: list) -> None:
        """Each request scored on its own, so that a request whose texts break the model fails
        alone. Runs while the failed batch's worker is still held."""
        loop = asyncio.get_running_loop()
        for request, future in waiting:
            try:
                own = await loop.run_in_executor(self.worker, self._predict, request)
            except Exception as error:  # noqa: BLE001 - handed to its request
                _answer(future, error=error)
            else:
                _answer(future, own)

    def _predict(self, texts: list[str]) -> list[dict]:
        return self.model.score(texts, self.max_batch, max_tokens=self.max_tokens)


PAGE = Path(__file__).parent / "page.html"
NEEDS_EXTRA = "sentiment serve needs FastAPI and uvicorn: pip install 'sentiment[serve]'"
OPEN_PATHS = ("/health", "/ready")  # probes answer without an API key


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self, batcher: Batcher):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("sentiment_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("sentiment_request_seconds", "HTTP request latency",
                                 ["endpoint"], registry=self.registry)
        self.batch = Histogram("sentiment_batch_texts", "texts scored in one batch",
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                               registry=self.registry)
        self.texts = Counter("sentiment_texts_scored", "texts scored", registry=self.registry)
        self.rejected = Counter("sentiment_rejected", "requests answered 503, by reason",
                                ["reason"], registry=self.registry)
        self.explain = Histogram("sentiment_explain_seconds", "time to explain one text",
                                 registry=self.registry)
        queue = Gauge("sentiment_queue_texts", "texts waiting for a worker",
                      registry=self.registry)
        queue.set_function(lambda: batcher.queued)

    def scored(self, size: int) -> None:
        self.batch.observe(size)
        self.texts.inc(size)

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class Explainer:
    """Explanations on a copy of the model, on a thread of their own, one at a time with at most
    ``waiting`` more queued: the batches of ``/predict`` never wait for one."""

    def __init__(self, model: TextClassifier, max_tokens: int, waiting: int):
        self.model, self.max_tokens = model, max_tokens
        self.copy: TextClassifier | None = None
        self.thread = worker_pool(1, "sentiment-explain", threads=1)
        self.slots = asyncio.Semaphore(1 + waiting)
        self.one = asyncio.Lock()

    async def explain(self, text: str) -> dict:
        if self.slots.locked():
            raise Overloaded("too many explanations are waiting; try again shortly")
        async with self.slots, self.one:
            if self.copy is None:  # its own weights: the explanation hooks its embeddings
                self.copy = copy.copy(self.model)
                self.copy.model = copy.deepcopy(self.model.model)
            return await asyncio.get_running_loop().run_in_executor(
                self.thread, lambda: self.copy.explain(text, max_tokens=self.max_tokens))

    def stop(self) -> None:
        self.thread.shutdown(wait=True)


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
    expected = f"Bearer {config.api_key}".encode() if config.api_key else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()
        if explainer is not None:
            explainer.stop()

    app = FastAPI(title="sentiment", lifespan=lifespan,
                  description="Sentiment of movie reviews with an LSTM classifier.")
    app.state.batcher = batcher
    app.state.metrics = metrics

    @app.middleware("http")
    async def guard(request: Request, call_next):
        """The API key, the body limit, and the request metrics (bodies are never logged)."""
        start = time.perf_counter()
        path = request.url.path
        endpoint = path if path in ("/", "/predict", "/explain", *OPEN_PATHS, "/metrics",
                                    "/docs", "/openapi.json") else "other"
        length = request.headers.get("content-length")
        if expected is not None and path not in OPEN_PATHS and not hmac.compare_digest(
                request.headers.get("authorization", "").encode(), expected):
            response = JSONResponse(status_code=401, headers={"WWW-Authenticate": "Bearer"},
                                    content={"detail": "a valid 'Authorization: Bearer KEY' "
                                                       "header is required"})
        elif length is not None and length.isdigit() and int(length) > config.max_body_bytes:
            response = JSONResponse(status_code=413, content={
                "detail": f"request body of {length} bytes is over the limit of "
                          f"{config.max_body_bytes}"})
        else:
            response = await call_next(request)
        if config.metrics:
            metrics.requests.labels(endpoint, str(response.status_code)).inc()
            metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
        return response

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, error: Overloaded):
        metrics.rejected.labels("stopping" if batcher.stopping else "overloaded").inc()
        return JSONResponse(status_code=503, headers={"Retry-After": "1"},
                            content={"detail": str(error)})

    @app.post("/predict", response_model=Prediction | list[Prediction])
    async def predict(body: PredictRequest, request: Request):
        """The label and score of one text, or of each text of a list (in order)."""
        single = isinstance(body.text, str)
        texts = [body.text] if single else body.text
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
        if not texts:
            return []
        try:
            results = await batcher.score(texts, request.is_disconnected)
        except asyncio.CancelledError:
            metrics.rejected.labels("disconnected").inc()
            raise
        return results[0] if single else results

    @app.post("/explain", response_model=Explanation)
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

    @app.get("/metrics", include_in_schema=False)
    async def prometheus():
        if not config.metrics:
            raise HTTPException(404, "metrics are off (--no-metrics)")
        body, content_type = metrics.exposition()
        return Response(content=body, media_type=content_type)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return page_html

    return app


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
    uvicorn.run(app, host=host, port=port, log_level=log_level)

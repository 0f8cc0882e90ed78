"""``sentiment serve``: a FastAPI app around :func:`~sentiment.predict.predict`.

    POST /predict   {"text": "A wonderful film"}          -> {"label": ..., "score": ...}
                    {"text": ["Great", "Awful", ...]}      -> [{"label": ..., "score": ...}, ...]
    POST /explain   {"text": "A dull film"}  -> label, score and each word's push ("words")
    GET  /health    model, labels, device
    GET  /          a page: paste a review, see its label and score
    GET  /docs      the OpenAPI documentation (FastAPI's)

Requests that arrive together are scored together (dynamic batching): a :class:`Batcher` takes
the texts of every request waiting in its queue, up to ``max_batch`` texts, waits at most
``max_wait_ms`` for more, scores them in one call on a worker thread and hands each request its
own results. Throughput under many clients thus approaches ``predict``'s batch throughput
instead of one forward pass per request. Needs the ``serve`` extra (``pip install
sentiment[serve]``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from .predict import SentimentModel, load_model
from .workers import default_workers, worker_pool

logger = logging.getLogger(__name__)

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse
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
        """A label, its probability, and each word's push (integrated gradients)."""

        label: str
        score: float
        logit: float
        baseline_logit: float
        words: list[Word]

    class Prediction(BaseModel):
        """A label and the probability of that label."""

        label: str
        score: float


@dataclass
class ServeConfig:
    """Limits and batching of the server."""

    max_text_chars: int = 50_000  # IMDB's longest review has ~14k characters
    max_texts: int = 256  # texts in one request
    max_body_bytes: int = 2_000_000
    max_batch: int = 64  # texts scored in one forward pass
    # ... and at most this many padded tokens in one: a served batch is reviews of random
    # lengths, and scored as one batch a few long ones pad all the short ones (BENCHMARKS.md)
    max_tokens: int | None = 8_192
    max_wait_ms: float = 5.0  # how long a lone request waits for company
    # batches scored at once, each on its share of torch's threads (one tokenizes while
    # another is in the model); None: 2 on a CPU with 2 or more threads, else 1 (BENCHMARKS.md)
    workers: int | None = None
    max_explain_chars: int = 20_000  # an explanation scores 34 copies of the text


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
    (:func:`~sentiment.workers.worker_pool`), and one worker's model runs while another
    tokenizes (spaCy holds the GIL: the model's tokenizing is one thread at a time, its forward
    pass is not).
    """

    def __init__(self, model: SentimentModel, max_batch: int = 64, max_wait_ms: float = 5.0,
                 max_tokens: int | None = None, workers: int = 1, threads: int | None = None):
        self.worker = worker_pool(workers, "sentiment-batch", threads)
        self.model, self.max_batch, self.max_wait = model, max_batch, max_wait_ms / 1000
        self.max_tokens, self.workers = max_tokens, workers
        self.queue: asyncio.Queue = asyncio.Queue()
        self.free = asyncio.Semaphore(workers)
        self.exclusive = asyncio.Lock()  # one alone() at a time gathers every worker
        self.task: asyncio.Task | None = None
        self.running: set[asyncio.Task] = set()
        self.batches = self.texts = 0  # counters, shown by /health

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)
        while not self.queue.empty():  # requests that never reached a worker
            _, future = self.queue.get_nowait()
            _answer(future, error=RuntimeError("the server is shutting down"))
        self.worker.shutdown(wait=True)

    async def score(self, texts: list[str]) -> list[dict]:
        """The results for ``texts``, scored together with whatever else is waiting."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            waiting = [await self.queue.get()]
            try:
                await self.free.acquire()  # the queue keeps filling while every worker is busy
            except asyncio.CancelledError:
                self.queue.put_nowait(waiting[0])  # stop() answers it
                raise
            size = len(waiting[0][0])
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                try:
                    item = await asyncio.wait_for(self.queue.get(), deadline - loop.time())
                except TimeoutError:
                    break
                waiting.append(item)
                size += len(item[0])
            task = asyncio.create_task(self._score(waiting))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def alone(self, function, *args):
        """``function(*args)`` on a worker while no batch is being scored (an explanation hooks
        the model's embeddings). Two at once would each hold some workers and wait for the
        rest, so they queue on a lock first."""
        async with self.exclusive:
            for _ in range(self.workers):
                await self.free.acquire()
        try:
            return await asyncio.get_running_loop().run_in_executor(self.worker, function, *args)
        finally:
            for _ in range(self.workers):
                self.free.release()

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


def create_app(model: str | Path | SentimentModel | None = None,
               config: ServeConfig | None = None) -> FastAPI:
    """The app serving ``model`` (a folder, a loaded model, or the default model)."""
    if FastAPI is None:
        raise ImportError(NEEDS_EXTRA)
    config = config or ServeConfig()
    page_html = PAGE.read_text(encoding="utf-8")
    loaded = load_model(model) if model is None or isinstance(model, (str, Path)) else model
    batcher = Batcher(loaded, config.max_batch, config.max_wait_ms, config.max_tokens,
                      config.workers or default_workers(loaded.device))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="sentiment", lifespan=lifespan,
                  description="Sentiment of movie reviews with an LSTM classifier.")
    app.state.batcher = batcher

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > config.max_body_bytes:
            return JSONResponse(status_code=413, content={
                "detail": f"request body of {length} bytes is over the limit of "
                          f"{config.max_body_bytes}"})
        return await call_next(request)

    @app.post("/predict", response_model=Prediction | list[Prediction])
    async def predict(request: PredictRequest):
        """The label and score of one text, or of each text of a list (in order)."""
        single = isinstance(request.text, str)
        texts = [request.text] if single else request.text
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
        results = await batcher.score(texts)
        return results[0] if single else results

    @app.post("/explain", response_model=Explanation)
    async def explain(request: ExplainRequest):
        """The label and score of one text and which words pushed it there: integrated
        gradients of the label's logit over the word embeddings (``weight`` scaled so that the
        strongest word is ±1; the raw ``attribution``s add up to ``logit - baseline_logit``)."""
        text = request.text
        if not text.strip():
            raise HTTPException(422, "text is empty or whitespace only")
        if len(text) > config.max_explain_chars:
            raise HTTPException(413, f"text has {len(text)} characters; the limit for "
                                     f"explanations is {config.max_explain_chars}")
        if not isinstance(loaded, SentimentModel):
            raise HTTPException(422, "this model has no word embedding to explain with (a "
                                     "linear or stacked model); POST /predict scores it")
        return await batcher.alone(loaded.explain, text)

    @app.get("/health")
    async def health():
        """Whether the server is up, and what it serves."""
        return {"status": "ok", "model": loaded.path or "(in memory)", "labels": loaded.labels,
                "device": str(loaded.device), "workers": batcher.workers,
                "batches": batcher.batches,
                "texts": batcher.texts}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return page_html

    return app


def serve(model: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000,
          config: ServeConfig | None = None, log_level: str = "info") -> None:
    """Run the app with uvicorn until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise ImportError(NEEDS_EXTRA) from None
    app = create_app(model, config)
    uvicorn.run(app, host=host, port=port, log_level=log_level)

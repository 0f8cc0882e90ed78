"""Dynamic batching for ``sentiment serve``: a :class:`Batcher` scores the texts of concurrent
requests together on worker threads, an :class:`Explainer` explains one text at a time on a thread
and a copy of the model of its own, and :class:`Overloaded` is the 503 either raises when full.

Requests that arrive together are scored together: the batcher takes the texts of every request
waiting in its queue, up to ``max_batch`` texts, waits at most ``max_wait_ms`` for more, scores
them in one call on a worker thread and hands each request its own results. At most ``max_queue``
texts wait: past that a request is refused (:class:`Overloaded`), and a request whose client went
away is dropped from the queue unscored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from ..kinds.protocol import TextClassifier
from ..runtime.workers import worker_pool


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


def _shares(waiting: list, count: int) -> list[list]:
    """``waiting`` requests dealt into ``count`` (at most as many as the requests) shares of
    about equal characters (the longest first, each to the share with the fewest so far), each
    in arrival order. Every share holds a request, even of empty texts: each is a worker's."""
    if count == 1:
        return [waiting]
    weight = [max(1, sum(map(len, texts))) for texts, _ in waiting]
    load, shares = [0] * count, [[] for _ in range(count)]
    for index in sorted(range(len(waiting)), key=lambda i: -weight[i]):
        least = load.index(min(load))
        shares[least].append(index)
        load[least] += weight[index]
    return [[waiting[i] for i in sorted(share)] for share in shares]


class _Watch:
    """Asks whether a waiting request's client went away every ``every`` seconds, the first
    time after ``every`` (most requests are answered sooner and cost one timer, where a wait
    with a timeout per request cost a tenth of a request's fixed cost), and cancels its future
    if so: :meth:`Batcher._run` skips it."""

    def __init__(self, future: asyncio.Future, disconnected: Callable[[], Awaitable[bool]],
                 every: float = 0.1):
        self.future, self.disconnected, self.every = future, disconnected, every
        self.loop = asyncio.get_running_loop()
        self.handle = self.loop.call_later(every, self._check)
        self.task: asyncio.Task | None = None

    def _check(self) -> None:
        self.task = self.loop.create_task(self._poll())

    async def _poll(self) -> None:
        if self.future.done():
            return
        if await self.disconnected():
            self.future.cancel()
        elif not self.future.done():
            self.handle = self.loop.call_later(self.every, self._check)

    def stop(self) -> None:
        self.handle.cancel()
        if self.task is not None:
            self.task.cancel()


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
        if disconnected is None:
            return await future
        watch = _Watch(future, disconnected)
        try:
            return await future
        finally:
            watch.stop()

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
                except asyncio.TimeoutError:  # TimeoutError itself from 3.11; another class on 3.10
                    break
                waiting.append(item)
                size += len(item[0])
            waiting = [item for item in waiting if not item[1].cancelled()]  # clients gone
            if not waiting:
                self.free.release()
                continue
            shares = 1  # every idle worker takes a share: a closed loop of clients otherwise
            while shares < len(waiting) and not self.free.locked():  # waits on one worker
                await self.free.acquire()
                shares += 1
            for share in _shares(waiting, shares):
                task = asyncio.create_task(self._score(share))
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
                self.copy = self.model.explaining_copy()
            return await asyncio.get_running_loop().run_in_executor(
                self.thread, lambda: self.copy.explain(text, max_tokens=self.max_tokens))

    def stop(self) -> None:
        self.thread.shutdown(wait=True)

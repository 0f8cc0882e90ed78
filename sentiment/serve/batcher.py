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
import copy
import multiprocessing
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..kinds.protocol import TextClassifier
from ..runtime.workers import worker_pool


_SCORER: tuple | None = None  # in a scoring process: (model, max_batch, max_tokens)


def _load_scorer(path: str, quantize: str, threads: int, max_batch: int,
                 max_tokens: int | None) -> None:
    """A scoring process's start: its own copy of the model, on ``threads`` threads."""
    global _SCORER
    from ..kinds.registry import load_model
    from ..runtime.workers import torch

    if torch is not None:
        torch.set_num_threads(threads)
    _SCORER = (load_model(path, quantize=quantize, threads=threads), max_batch, max_tokens)


def _score_here(texts: list[str]) -> list[dict]:
    """Score ``texts`` in a scoring process (its model loaded by :func:`_load_scorer`)."""
    model, max_batch, max_tokens = _SCORER
    return model.score(texts, max_batch, max_tokens=max_tokens)


def process_pool(processes: int, model: TextClassifier, max_batch: int,
                 max_tokens: int | None, threads: int = 1,
                 quantize: str = "none") -> ProcessPoolExecutor:
    """``processes`` scoring processes, each loading ``model``'s folder on ``threads`` threads
    (started fresh, not forked: torch's thread pools do not survive a fork)."""
    if not model.path or not Path(model.path).is_dir():
        raise ValueError("scoring processes load the model from its folder: this model has none "
                         "(one made in memory); serve it with worker threads instead")
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_load_scorer,
                               initargs=(str(model.path), quantize, threads, max_batch,
                                         max_tokens))


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
                 on_batch: Callable[[int], None] | None = None, processes: bool = False,
                 quantize: str = "none"):
        # processes: each worker a process of its own with its own copy of the model, so that
        # tokenizing and the model's Python never wait for the HTTP loop's GIL (nor it for them)
        self.processes = processes
        self.worker = (process_pool(workers, model, max_batch, max_tokens, threads or 1, quantize)
                       if processes else worker_pool(workers, "sentiment-batch", threads))
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
        if self.processes:  # every process started and its model loaded before /ready says so
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(self.worker, _score_here, ["warm up"])
                                   for _ in range(self.workers)))
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
                except asyncio.TimeoutError:  # TimeoutError itself from 3.11; another class on 3.10
                    break
                waiting.append(item)
                size += len(item[0])
            waiting = [item for item in waiting if not item[1].cancelled()]  # clients gone
            if not waiting:
                self.free.release()
                continue
            for group in await self._share(waiting):
                task = asyncio.create_task(self._score(group))
                self.running.add(task)
                task.add_done_callback(self.running.discard)

    async def _share(self, waiting: list) -> list[list]:
        """``waiting`` cut into one batch per idle worker (the one already held and each other
        one free now), balanced by characters, so that a batch holding every waiting request
        does not leave the other workers idle (the load of a few dozen clients that each wait
        for their answer comes as one batch at a time). Holds a worker for each batch but the
        first."""
        groups = [waiting]
        if len(waiting) > 1 and not self.free.locked():
            count = 1
            while count < min(len(waiting), self.workers) and not self.free.locked():
                await self.free.acquire()  # free: returns at once
                count += 1
            groups, sizes = [[] for _ in range(count)], [0] * count
            for item in sorted(waiting, key=lambda item: -sum(map(len, item[0]))):
                lightest = sizes.index(min(sizes))
                groups[lightest].append(item)
                sizes[lightest] += sum(map(len, item[0]))
        return groups

    async def _score(self, waiting: list) -> None:
        loop = asyncio.get_running_loop()
        texts = [text for request, _ in waiting for text in request]
        try:
            results = await loop.run_in_executor(self.worker, self._call, texts)
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
                own = await loop.run_in_executor(self.worker, self._call, request)
            except Exception as error:  # noqa: BLE001 - handed to its request
                _answer(future, error=error)
            else:
                _answer(future, own)

    def _predict(self, texts: list[str]) -> list[dict]:
        return self.model.score(texts, self.max_batch, max_tokens=self.max_tokens)

    @property
    def _call(self) -> Callable[[list[str]], list[dict]]:
        """What a worker runs on a batch: the model here, or a scoring process's copy."""
        return _score_here if self.processes else self._predict


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

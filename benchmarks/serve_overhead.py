"""The server's own cost per ``/predict`` request, without HTTP and without a model.

    python -m benchmarks.serve_overhead --data ../shared/data/imdb --model imdb-cascade

Builds the app of ``sentiment serve`` (:func:`~sentiment.serve.app.create_app`) around the model
whose labels and vocabulary it borrows, but whose scoring is replaced by one that costs nothing,
and calls the app directly as uvicorn would (ASGI, in this process, ``--clients`` requests at a
time, each one test review). What it reports, CPU microseconds per request, is everything the
server does for a request but parse HTTP and run the model: the guard middleware, routing, body
validation, batching, the answer's known-word share and JSON. A fast model's served throughput is
bounded by it (BENCHMARKS.md). CPU time, not wall time: it is repeatable on a loaded machine
within a few percent, but compare figures of one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import pyarrow.parquet as pq

from sentiment.kinds.registry import load_model
from sentiment.serve.app import ServeConfig, create_app


class Costless:
    """A model with another model's labels, answers and vocabulary whose scoring is free."""

    capabilities = frozenset()

    def __init__(self, model):
        for name in ("kind", "path", "labels", "answers", "words", "device"):
            setattr(self, name, getattr(model, name))

    def score(self, texts, batch_size=64, mixed_precision=True, all_scores=False, **budget):
        return [{"label": self.labels[-1], "score": 0.9} for _ in texts]


async def _post(app, body: bytes) -> int:
    """One ``POST /predict`` through the app's ASGI interface; its status."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = []

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # no disconnect: the client stays

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/predict", "raw_path": b"/predict",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8000),
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    await app(scope, receive, send)
    return status[0]


async def measure(model, texts: list[str], requests: int, clients: int, rounds: int,
                  config: ServeConfig | None = None) -> list[dict]:
    """Per round: requests/s (wall) and CPU microseconds per request, after a warm-up round."""
    app = create_app(Costless(model), config or ServeConfig(access_log=False))
    bodies = [json.dumps({"text": text}).encode() for text in texts]
    results = []
    async with app.router.lifespan_context(app):
        async def client(first: int) -> None:
            for index in range(first, requests, clients):
                status = await _post(app, bodies[index % len(bodies)])
                if status != 200:
                    raise RuntimeError(f"the app answered {status}")

        for round_ in range(rounds + 1):
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(client(k) for k in range(clients)))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if round_:  # the first round warms up
                results.append({"requests_per_s": round(requests / wall, 1),
                                "cpu_us_per_request": round(1e6 * cpu / requests, 1)})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--model", default="imdb", help="whose labels and words the app uses")
    parser.add_argument("--requests", type=int, default=4000, help="per round")
    parser.add_argument("--clients", type=int, default=32, help="requests at a time")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reviews", type=int, default=2000, help="the first test reviews")
    args = parser.parse_args()
    texts = pq.read_table(f"{args.data}/test.parquet", columns=["text"]).column(
        "text").to_pylist()[: args.reviews]
    for row in asyncio.run(measure(load_model(args.model), texts, args.requests, args.clients,
                                   args.rounds)):
        print(json.dumps({"model": args.model, "clients": args.clients, **row}))


if __name__ == "__main__":
    main()

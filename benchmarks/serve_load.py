"""A bounded load test of ``sentiment serve`` on 127.0.0.1, against ``predict``'s batch throughput.

    python -m benchmarks.serve_load --data ../shared/data/imdb --model sentiment/models/imdb

``--workers 1 2 1 2`` compares the server's worker settings, alternating, in one run;
``--variants default no-metrics api-key=k max-queue=1000000`` compares server options
(the cost of metrics, authentication, backpressure); ``--explain-clients N`` keeps N clients
asking ``/explain`` of long reviews throughout each level (``/predict``'s latency under a load of
explanations).

Starts the server in its own process (``python -m sentiment serve``), waits for ``/health``, then
for each number of concurrent clients sends ``--requests`` single-review POSTs (each client one
request at a time, keep-alive) and records requests/s and the p50/p99 latency. Then, in this
process once the server is gone, times ``predict`` on the same reviews in batches of 64: the
throughput that dynamic batching should approach; and, for each level's mean batch size, the
same model scoring the same reviews in batches of that size on the server's worker threads
without HTTP (the most the server could reach with batches that small). The reviews are the
first test reviews of the data, in file order. The client and the server share the machine's
cores: on 2 cores the clients' own work is part of what is measured.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(port: int, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("the server did not answer /health")


def _health(port: int) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/health")
    return json.loads(connection.getresponse().read())


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def explain_load(port: int, texts: list[str], clients: int, stop: threading.Event,
                 headers: dict) -> tuple[list[threading.Thread], list[float]]:
    """``clients`` threads asking /explain of the longest texts until ``stop``; their
    latencies (seconds)."""
    longest = sorted(texts, key=len)[-max(clients, 1) * 4:]
    seconds: list[float] = []

    def client(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        index = offset
        while not stop.is_set():
            body = json.dumps({"text": longest[index % len(longest)][:20_000]})
            start = time.perf_counter()
            connection.request("POST", "/explain", body,
                               {"Content-Type": "application/json", **headers})
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                seconds.append(time.perf_counter() - start)
            index += clients
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    return threads, seconds


def load_level(port: int, texts: list[str], clients: int, requests: int,
               server_pid: int | None = None, headers: dict | None = None,
               explain_clients: int = 0) -> dict:
    """``requests`` POSTs of one text each from ``clients`` concurrent keep-alive clients; with
    ``server_pid``, the CPU seconds the server and these clients spent meanwhile."""
    latencies: list[float] = []
    next_index = iter(range(requests))
    lock, errors = threading.Lock(), []
    headers = headers or {}
    stop = threading.Event()
    explainers, explain_seconds = explain_load(port, texts, explain_clients, stop, headers)

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                break
            body = json.dumps({"text": texts[index % len(texts)]})
            start = time.perf_counter()
            connection.request("POST", "/predict", body,
                               {"Content-Type": "application/json", **headers})
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if response.status != 200:
                    errors.append(response.status)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    server_cpu = cpu_seconds(server_pid) if server_pid else 0.0
    client_cpu = time.process_time()
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    stop.set()
    for thread in explainers:
        thread.join()
    client_cpu = time.process_time() - client_cpu
    ms = np.asarray(latencies) * 1000
    result = {"clients": clients, "requests": len(latencies), "errors": len(errors),
              "requests_per_s": len(latencies) / wall, "p50_ms": float(np.percentile(ms, 50)),
              "p99_ms": float(np.percentile(ms, 99)), "client_cpu_s": client_cpu,
              "wall_s": wall, "explain_clients": explain_clients,
              "explanations": len(explain_seconds),
              "explain_p50_s": float(np.median(explain_seconds)) if explain_seconds else None}
    if server_pid:
        server_cpu = cpu_seconds(server_pid) - server_cpu
        result.update(server_cpu_s=server_cpu,
                      requests_per_server_cpu_s=len(latencies) / max(server_cpu, 1e-9))
    return result


def in_process(model, texts: list[str], size: int, workers: int, max_tokens: int | None) -> float:
    """Reviews/s of ``model`` scoring ``texts`` in file order in batches of ``size`` on
    ``workers`` one-thread workers, as the server's batch workers do, without HTTP: what the
    server could reach with batches of that size."""
    from sentiment.runtime.workers import worker_pool

    pool = worker_pool(workers, "ceiling")  # the server's own rule for each worker's threads
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
    list(pool.map(lambda chunk: model.score(chunk, 64, max_tokens=max_tokens), chunks[:workers]))
    start = time.perf_counter()
    list(pool.map(lambda chunk: model.score(chunk, 64, max_tokens=max_tokens), chunks))
    seconds = time.perf_counter() - start
    pool.shutdown()
    return len(texts) / seconds


def run_server(args: argparse.Namespace, texts: list[str], workers: str,
               variant: str = "") -> list[dict]:
    """Start ``sentiment serve`` with ``workers`` model workers and the extra options
    ``variant``, load it at every level, stop it; the levels' results."""
    port = _free_port()
    extra = [part for option in variant.split(",") if option and option != "default"
             for part in ("--" + option).split("=", 1)]
    headers = ({"Authorization": f"Bearer {extra[extra.index('--api-key') + 1]}"}
               if "--api-key" in extra else {})
    command = [sys.executable, "-m", "sentiment", "serve", "--port", str(port),
               "--max-wait-ms", str(args.max_wait_ms), "--max-tokens", args.max_tokens,
               "--workers", workers, *extra]
    if args.model:
        command += ["--model", args.model]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        _wait_healthy(port, server)
        load_level(port, texts, 8, 64, headers=headers)  # warm-up: caches, connections
        levels = []
        for clients in args.clients:
            before = _health(port)
            levels.append(load_level(port, texts, clients, args.requests, server.pid,
                                     headers, args.explain_clients))
            after = _health(port)
            levels[-1]["server_workers"] = after.get("workers")
            levels[-1]["mean_batch"] = ((after["texts"] - before["texts"])
                                        / max(after["batches"] - before["batches"], 1))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=400, help="per level")
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-tokens", default="8192",
                        help="the server's padded-token budget per batch ('none': one batch)")
    parser.add_argument("--workers", nargs="+", default=["none"],
                        help="the server's model workers; several values start one server "
                             "each, in order (1 2 1 2 alternates two settings; default: the "
                             "server's own)")
    parser.add_argument("--variants", nargs="+", default=["default"],
                        help="server options without their dashes, comma-separated, one server "
                             "each: default, no-metrics, api-key=KEY, max-queue=N")
    parser.add_argument("--explain-clients", type=int, default=0,
                        help="clients asking /explain of long reviews during each level")
    parser.add_argument("--output", default=None, help="write the results here (JSON)")
    args = parser.parse_args()
    texts = pq.read_table(Path(args.data) / "test.parquet", columns=["text"]).slice(
        0, max(args.requests, 64 * 8))["text"].to_pylist()
    runs = [{"workers": workers, "variant": variant,
             "levels": run_server(args, texts, workers, variant)}
            for workers in args.workers for variant in args.variants]
    from sentiment import load_model, predict

    model = load_model(args.model)
    predict(texts[:64], model=model)
    start, cpu = time.perf_counter(), time.process_time()
    predict(texts[: args.requests], model=model, batch_size=64)
    batch_rate = args.requests / (time.perf_counter() - start)
    batch_cpu_rate = args.requests / (time.process_time() - cpu)
    max_tokens = None if args.max_tokens == "none" else int(args.max_tokens)
    workers = max(int(level.get("server_workers") or 1) for run in runs for level in run["levels"])
    ceilings = {size: in_process(model, texts[: args.requests], size, workers, max_tokens)
                for size in sorted({max(1, round(level["mean_batch"]))
                                    for run in runs for level in run["levels"]})}
    for run, level in ((run, level) for run in runs for level in run["levels"]):
        level["in_process_same_batch_per_s"] = ceilings[max(1, round(level["mean_batch"]))]
    result = {"runs": runs, "predict_batch64_reviews_per_s": batch_rate,
              "predict_batch64_reviews_per_cpu_s": batch_cpu_rate,
              "max_wait_ms": args.max_wait_ms, "max_tokens": args.max_tokens,
              "model": str(model.path)}
    print("| workers | options | clients | requests/s | p50 ms | p99 ms | mean batch | errors "
          "| server CPU s | client CPU s | requests per server CPU s | in-process, same batches "
          "(reviews/s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for run, level in ((run, level) for run in runs for level in run["levels"]):
        print(f"| {run['workers']} | {run['variant']} | {level['clients']} | "
              f"{level['requests_per_s']:.1f} | "
              f"{level['p50_ms']:.0f} | "
              f"{level['p99_ms']:.0f} | {level['mean_batch']:.1f} | {level['errors']} | "
              f"{level['server_cpu_s']:.1f} | {level['client_cpu_s']:.1f} | "
              f"{level['requests_per_server_cpu_s']:.1f} | "
              f"{level['in_process_same_batch_per_s']:.1f} |")
    print(f"predict, batches of 64, same reviews: {batch_rate:.1f} reviews/s, "
          f"{batch_cpu_rate:.1f} per CPU s")
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

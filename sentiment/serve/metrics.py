"""The Prometheus metrics of ``sentiment serve`` (``prometheus_client``, imported when an app is
made)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .batcher import Batcher


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

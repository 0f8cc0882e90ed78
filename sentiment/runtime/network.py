"""Whether a host can be reached, asked once per process and answered in seconds: without a
network, the Hugging Face libraries retry for half a minute before they fail, so a command
checks first and says at once which local-data flag to use instead."""

from __future__ import annotations

import functools
import os
import socket

HUB = "huggingface.co"
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def offline_requested() -> bool:
    """Whether the user asked the Hugging Face libraries to work offline (from their cache)."""
    return any(os.environ.get(name, "").upper() in ("1", "TRUE", "YES", "ON")
               for name in OFFLINE_VARIABLES)


@functools.cache
def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds (once per
    process: the answer is cached)."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:  # no route, no DNS, refused, timed out
        return False
    return True

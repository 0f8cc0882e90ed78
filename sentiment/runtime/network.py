"""Whether a host can be reached, answered in seconds: without a
network, the Hugging Face libraries retry for half a minute before they fail, so a command
checks first and says at once which local-data flag to use instead."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

HUB = "huggingface.co"
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def offline_requested() -> bool:
    """Whether the user asked the Hugging Face libraries to work offline (from their cache)."""
    return any(os.environ.get(name, "").upper() in ("1", "TRUE", "YES", "ON")
               for name in OFFLINE_VARIABLES)


PROXIES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def hub_host() -> str:
    """The hub's host: ``$HF_ENDPOINT``'s where the user points at a mirror."""
    endpoint = os.environ.get("HF_ENDPOINT")
    return urlsplit(endpoint).hostname or HUB if endpoint else HUB


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds; always true
    behind a proxy (a direct connection says nothing there). A success is remembered for the
    process, a failure asked again next time."""
    if any(os.environ.get(name) for name in PROXIES) or (host, port) in _REACHED:
        return True
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:  # no route, no DNS, refused, timed out
        return False
    _REACHED.add((host, port))
    return True


_REACHED: set[tuple[str, int]] = set()

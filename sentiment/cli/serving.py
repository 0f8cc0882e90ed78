"""The serve command: a saved model over HTTP."""

from __future__ import annotations

import os

from .parsing import command_parser, parse


def serve(argv: list[str] | None = None) -> None:
    """Serve a sentiment model over HTTP (FastAPI + uvicorn; pip install 'sentiment-lstm[serve]').

    sentiment serve                                   # the shipped model on 127.0.0.1:8000
    sentiment serve --model runs/sentiment --port 8080

    GET / is a page to try reviews on; POST /predict takes {"text": "..."} or {"text": [...]};
    POST /explain {"text": "..."} says which words pushed the label; GET /health and GET /ready
    are the probes, GET /metrics the Prometheus metrics, GET /docs the OpenAPI documentation.
    Concurrent requests are scored together; past --max-queue waiting texts a request gets a
    503 with Retry-After.
    """
    from dataclasses import asdict

    from ..serve.app import ServeConfig
    from ..serve.app import serve as run_server
    from .options import add_dataclass_options, setup_logging

    parser = command_parser(serve, "serve")
    parser.add_argument("--model", default=None,
                        help="saved model folder (default: $SENTIMENT_MODEL, else the model "
                             "shipped with the package)")
    parser.add_argument("--host", default="127.0.0.1", help="(default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="(default: %(default)s)")
    add_dataclass_options(parser, ServeConfig(api_key=os.environ.get("SENTIMENT_API_KEY")))
    args = parse(parser, argv)
    try:
        config = ServeConfig(**{name: getattr(args, name) for name in asdict(ServeConfig())})
    except ValueError as error:  # named as the flag the user typed
        message = str(error)
        for name in asdict(ServeConfig()):
            message = message.replace(name, "--" + name.replace("_", "-"))
        parser.error(message)
    setup_logging()
    _check_port(args.host, args.port)
    run_server(args.model, args.host, args.port, config)


def _check_port(host: str, port: int) -> None:
    """Refuse, in one line, an address another process listens on (uvicorn would print its
    own lines and exit 3), before the model loads."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConnectionError(f"cannot listen on {host}:{port}: {error.strerror} (another "
                                  "server there? choose another with --port)") from None

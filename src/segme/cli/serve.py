"""``segme serve``: the HTTP API (``segme.serve``) on uvicorn, and the web page when built."""

from __future__ import annotations

import socket
from pathlib import Path

import typer

from segme.cli import _options as opt


def serve(host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every "
                                   "interface; the API has no authentication)."),
          port: int = typer.Option(8000, min=0, max=65535, help="Port (0: any free port)."),
          model: Path = opt.MODEL,
          workers: int = typer.Option(2, min=1, help="Images processed at once."),
          threads: int = typer.Option(None, min=1, help="Inference threads per worker "
                                      "(default: cores / workers)."),
          queue: int = typer.Option(16, min=0, help="Requests that may wait for a worker; "
                                    "more get 503 at once."),
          max_mb: float = typer.Option(20.0, help="Largest request body in MB (413 above)."),
          max_megapixels: float = typer.Option(40.0, help="Largest image in megapixels (413 "
                                               "above)."),
          timeout: float = typer.Option(30.0, help="Seconds per request, queue wait included "
                                        "(504 after)."),
          ) -> None:
    """Serve the model over HTTP: POST /v1/cutout, /v1/mask, /v1/replace, /v1/blur; docs at /docs."""
    try:
        import uvicorn

        from segme.serve import create_app
    except ImportError as e:
        if "segme[serve]" in str(e):
            raise
        raise ImportError(f'the HTTP server needs FastAPI and uvicorn ({e.name} is missing): '
                          'pip install "segme[serve]"') from None

    if max_mb <= 0 or max_megapixels <= 0 or timeout <= 0:
        raise ValueError("--max-mb, --max-megapixels and --timeout must be positive")
    # the model loads before the port is taken: a bad model file fails without holding it
    app = create_app(model, workers=workers, threads=threads, queue=queue,
                     max_bytes=round(max_mb * 1e6), max_pixels=round(max_megapixels * 1e6),
                     timeout=timeout)
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"segme serving {app.state.pool.card.arch} on http://{shown}:{sock.getsockname()[1]} "
          "(API docs at /docs; Ctrl-C stops)", flush=True)
    config = uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=10)
    uvicorn.Server(config).run(sockets=[sock])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or OSError naming the address and what to do.

    Bound here rather than by uvicorn, which logs a busy port and exits 1: the CLI's rule is
    one ``error:`` line and exit code 2 for a user mistake.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror}; check --host") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    # like uvicorn: a restarted server may reuse the port while old connections time out
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror}; choose another --port "
                      "or stop the program that uses it") from None
    return sock

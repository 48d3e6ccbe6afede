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
          timeout: float = typer.Option(30.0, help="Seconds per request once its body is in, "
                                        "queue wait included (504 after)."),
          memory_mb: float = typer.Option(1000.0, help="Memory in MB that the images being "
                                          "processed may use together; requests wait for "
                                          "their share."),
          upload_timeout: float = typer.Option(120.0, help="Seconds a client has to send its "
                                               "whole request body (408 after)."),
          min_upload_rate: float = typer.Option(10.0, help="Slowest upload in kB/s, on average "
                                                "after its first 2 s (408 below; 0: none)."),
          max_uploads: int = typer.Option(128, min=1, help="Request bodies arriving at once "
                                          "(503 above)."),
          max_uploads_per_client: int = typer.Option(8, min=1, help="Request bodies arriving "
                                                     "at once from one address (429 above)."),
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

    if min(max_mb, max_megapixels, timeout, memory_mb, upload_timeout) <= 0:
        raise ValueError("--max-mb, --max-megapixels, --timeout, --memory-mb and "
                         "--upload-timeout must be positive")
    if min_upload_rate < 0:
        raise ValueError("--min-upload-rate must be 0 or more")
    # the model loads before the port is taken: a bad model file fails without holding it
    app = create_app(model, workers=workers, threads=threads, queue=queue,
                     max_bytes=round(max_mb * 1e6), max_pixels=round(max_megapixels * 1e6),
                     timeout=timeout, memory=round(memory_mb * 1e6),
                     upload_timeout=upload_timeout, min_upload_rate=min_upload_rate * 1e3,
                     max_uploads=max_uploads, max_uploads_per_client=max_uploads_per_client)
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

"""``imgrec serve [RUN ...] [--faces COLLECTION [--db PATH_OR_URL]] [--host 127.0.0.1] [--port 8000]
[--api-key-file keys.txt]``."""

from __future__ import annotations

import argparse
import logging
import socket
from pathlib import Path
from typing import Any

from imgrec.cli.output import add_max_pixels, console
from imgrec.errors import MissingInputError, OutputError, UsageError

log = logging.getLogger(__name__)

# CLI flag -> ServeConfig field (flags default to None: "not given")
SERVE_FLAGS = (
    "max_batch_size",
    "max_wait_ms",
    "queue_size",
    "max_images_per_request",
    "request_timeout_s",
    "workers_threads",
    "model_threads",
    "graceful_timeout_s",
    "max_pixels",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve trained runs over HTTP (JSON API, web page, metrics)",
        description="Serve runs (each named after its folder: POST /v1/models/NAME/predict) and/or face "
        "collections (--faces: POST /v1/collections/NAME/search, /v1/faces/detect, ...).",
    )
    p.add_argument("runs", nargs="*", help="run directories (runs/<model>-<n>)")
    g = p.add_argument_group("faces")
    g.add_argument("--faces", metavar="COLLECTION", help="serve face detection and the database's face collections "
                   "with its embedder (create it first: imgrec faces collections create NAME)")  # fmt: skip
    g.add_argument("--db", metavar="PATH_OR_URL", help="the database (default: $IMGREC_DB, else the data directory)")
    g.add_argument("--detector", default="yunet", help="face detector (default yunet)")
    g.add_argument("--detector-weights", metavar="FILE", help="the face detector's ONNX file")
    g.add_argument("--embedder", metavar="NAME|RUN", help="load the collection's embedder from here instead")
    g.add_argument("--embedder-weights", metavar="FILE", help="the embedder's ONNX file (sface)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (0 picks a free one)")
    p.add_argument("--api-key-file", help="require API keys: one per line (# comments); also IMGREC_API_KEYS")
    p.add_argument("--max-batch-size", type=int, help="images per model call; 1 turns micro-batching off")
    p.add_argument("--max-wait-ms", type=float, help="how long a batch waits for more images")
    p.add_argument("--queue-size", type=int, help="images waiting per model before 503 overloaded")
    p.add_argument("--max-upload-mb", type=float, help="largest request body in MB (413 above)")
    p.add_argument("--max-images-per-request", type=int, help="files one request may carry")
    p.add_argument("--request-timeout-s", type=float, help="deadline of one request (503 deadline_exceeded)")
    p.add_argument("--workers-threads", type=int, help="threads decoding uploads")
    p.add_argument("--threads", dest="model_threads", type=int, help="CPU threads per model call (default: auto)")
    p.add_argument("--graceful-timeout-s", type=float, help="on SIGTERM, time for in-flight requests")
    add_max_pixels(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the runs, bind the socket, print the URL, serve until SIGINT/SIGTERM."""
    import uvicorn

    from imgrec.serve import ServeConfig, create_app, load_api_keys

    for run in args.runs:
        if not Path(run).exists():
            raise MissingInputError(f"Run directory not found: {run}")
    if not args.runs and not args.faces:
        raise UsageError("Nothing to serve: give run directories, --faces COLLECTION, or both.")
    config = ServeConfig.from_dict({**_overrides(args), "api_keys": load_api_keys(args.api_key_file)})
    faces = _faces(args, config) if args.faces else None
    app = create_app(args.runs, config, faces=faces)
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    names = ", ".join([*(Path(r).resolve().name for r in args.runs), *([f"faces ({args.faces})"] if faces else [])])
    console.out(
        f"imgrec serving {names} at {_url(host, port)} (web page at /, API guide at /docs, OpenAPI at /openapi.json)"
    )
    console.out(
        f"model threads {config.threads_per_model}, decode threads {config.workers_threads}, "
        f"micro-batches of up to {config.max_batch_size or 'each model batch size of'} images "
        f"(wait {config.max_wait_ms:g} ms)"
    )
    if config.auth_enabled:
        console.out(f"API keys required ({len(config.api_keys)} configured); /healthz and /readyz stay open.")
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_config=None, timeout_graceful_shutdown=int(config.graceful_timeout_s) or None, access_log=True
        )
    )
    server.run(sockets=[sock])
    return 0


def _faces(args: argparse.Namespace, config: Any) -> Any:
    from imgrec.serve.faces import FaceService

    return FaceService.open(args.faces, db=args.db, detector=args.detector, detector_weights=args.detector_weights,
                            embedder=args.embedder, embedder_weights=args.embedder_weights,
                            threads=config.threads_per_model)  # fmt: skip


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    values = {flag: getattr(args, flag) for flag in SERVE_FLAGS if getattr(args, flag, None) is not None}
    if getattr(args, "max_upload_mb", None) is not None:
        values["max_upload_bytes"] = int(args.max_upload_mb * 1024 * 1024)
    return values


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
    # IPPROTO_TCP, and without it every keep-alive response stalls ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OutputError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Pick another --port.") from None
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"

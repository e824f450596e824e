"""`mlspec serve RUN_DIR`: a trained run as an HTTP server (FastAPI and uvicorn, the
`serve` extra); what it answers is `mlspec.runtime.server`'s."""

from __future__ import annotations

import signal
import socket

from mlspec.cli.errors import EXIT_FAILURE, EXIT_SPEC_ERROR, err
from mlspec.cli.shared import RUN_DIR_HELP, member_option
from mlspec.syntax.errors import located

SERVE_MISSING = ("mlspec serve needs FastAPI and uvicorn (the `serve` extra: pip install "
                 "'mlspec[serve]'); {} is not installed")


def cmd_serve(args) -> int:
    for module in ("fastapi", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            err(SERVE_MISSING.format(module))
            return EXIT_SPEC_ERROR
    if not 0 <= args.port <= 65535:
        err(f"mlspec serve: error: --port {args.port} is not a port (0 to 65535)")
        return EXIT_SPEC_ERROR
    try:  # bound first: a port in use is said before the model is loaded
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        sock.listen(128)
    except (OSError, OverflowError) as exc:
        err(located(f"{args.host}:{args.port}",
                    f"cannot listen there: {getattr(exc, 'strerror', None) or exc}"))
        return EXIT_FAILURE
    try:
        return _serve(args, sock)
    finally:
        sock.close()


def _serve(args, sock) -> int:
    import uvicorn

    from mlspec.runtime.reload import load_run
    from mlspec.runtime.server import build_app
    from mlspec.runtime.serving import Predictor

    result = load_run(args.run_dir, member=args.member)
    predictor = Predictor(result)
    predictor.warm_up()  # every bucket compiled before the first request
    app = build_app(result, str(args.run_dir), predictor)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    err(f"serving {args.run_dir} at http://{shown}:{port} (POST /predict, GET /health, "
        f"the API at /docs); Ctrl-C stops")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="off"))
    # uvicorn stops gracefully on SIGINT and SIGTERM, and raises them again once stopped:
    # then they only end the command, which exits 0 (a server is stopped so)
    stopped = []
    previous = {s: signal.signal(s, lambda signum, frame: stopped.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not server.started:
        err(located(f"{host}:{port}", "the server could not start"))
        return EXIT_FAILURE
    err("stopped")
    return 0


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="serve a trained run's predictions over HTTP",
                       description="Serves the predictions of a trained run over HTTP: POST "
                                   '/predict with {"rows": [[...], ...]} (the numeric '
                                   'features in the data\'s column order) or {"columns": '
                                   '{"name": [...], ...}} (raw text and categorical values '
                                   'too) answers {"predictions": [...]} (class names where '
                                   'the data had them; with "proba": true also '
                                   '"probabilities"); GET /health; the OpenAPI schema at '
                                   "/openapi.json. Needs the serve extra (FastAPI, uvicorn).")
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="the port (default 8000; 0: any "
                                                          "free one)")
    member_option(p)
    p.set_defaults(fn=cmd_serve)

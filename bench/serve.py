"""Requests per second and latency (p50, p99) of `mlspec serve`, as a client sees them
over HTTP on this machine: single rows one after another, single rows from several
client threads at once, and batches of 100, 1,000 and 10,000 rows (each request's JSON
encoded once, before it is timed; each answer read whole).

It trains specs/iris_csv.mlspec (asked with rows of numbers) and specs/income.mlspec
(asked with named columns, categorical cells among them) into a temporary folder, and
serves each; the requests hold rows of the spec's own data file.

    python bench/serve.py [--requests N] [--threads T]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
JSON = {"content-type": "application/json"}
SPECS = {"iris_csv": "iris.csv", "income": "income.csv"}
"""Each spec, and the data file whose rows the requests hold."""


def train(spec: str, folder: Path) -> Path:
    shutil.copytree(ROOT / "specs" / "data", folder / "data", dirs_exist_ok=True)
    shutil.copy(ROOT / "specs" / f"{spec}.mlspec", folder)
    run = folder / f"run_{spec}"
    subprocess.run([sys.executable, "-m", "mlspec", "run", str(folder / f"{spec}.mlspec"),
                    "--out", str(run), "--quiet"], check=True, cwd=folder,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return run


def start(run: Path, log: Path) -> tuple[subprocess.Popen, str, float]:
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "mlspec", "serve", str(run), "--port",
                                "0"], stderr=log.open("w"), stdout=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    while not (found := re.search(r"at (http://[\d.]+:\d+) ", log.read_text())):
        if process.poll() is not None or time.perf_counter() - began > 300:
            process.kill()
            raise SystemExit(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return process, found.group(1), time.perf_counter() - began


def bodies(client: httpx.Client, data: str, rows: int) -> dict:
    """A request of `rows` rows of the data file (drawn with replacement): rows where the
    model takes them, else named columns."""
    health = client.get("/health").json()
    table = pd.read_csv(ROOT / "specs" / "data" / data).sample(rows, replace=True,
                                                               random_state=0)
    if health["row_width"] is not None:
        return {"rows": table[health["columns"]].to_numpy().tolist()}
    return {"columns": {c: table[c].tolist() for c in health["columns"]}}


def measure(url: str, body: dict | None, requests: int, threads: int = 1) -> dict[str, float]:
    """Requests of `body` (None: GET /health, the HTTP stack alone)."""
    latencies: list[float] = []
    content = json.dumps(body).encode() if body is not None else None  # encoded once: the
    # client's own JSON encoding is not the server's time

    def ask(client: httpx.Client, count: int) -> None:
        for _ in range(count):
            began = time.perf_counter()
            answer = client.post("/predict", content=content, headers=JSON) \
                if content is not None else client.get("/health")
            latencies.append(time.perf_counter() - began)
            if answer.status_code != 200:
                raise SystemExit(f"{answer.status_code}: {answer.text[:300]}")

    clients = [httpx.Client(base_url=url, timeout=300) for _ in range(threads)]
    ask(clients[0], 3)  # the connection opened, the first answers out of the way
    latencies.clear()
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda c: ask(c, requests // threads), clients))
    wall = time.perf_counter() - began
    for client in clients:
        client.close()
    ms = sorted(1000 * t for t in latencies)
    return {"requests/s": len(ms) / wall, "p50 ms": statistics.median(ms),
            "p99 ms": float(np.percentile(ms, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400,
                        help="single-row requests per case (batches get fewer)")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(train(spec, Path(tmp)), data) for spec, data in SPECS.items()]
        print(f"{'run':<14} {'case':<22} {'requests/s':>10} {'rows/s':>10} {'p50 ms':>8} "
              f"{'p99 ms':>8}")
        for run, data in runs:
            process, url, start_s = start(run, Path(tmp) / f"{run.name}.log")
            try:
                print(f"{run.name:<14} {'start (to listening)':<22} {start_s:>9.1f}s")
                with httpx.Client(base_url=url) as client:
                    cases = [("1 row", 1, args.requests, 1),
                             (f"1 row, {args.threads} threads", 1, args.requests,
                              args.threads),
                             ("100 rows", 100, args.requests // 4, 1),
                             ("1,000 rows", 1000, max(args.requests // 20, 5), 1),
                             ("10,000 rows", 10_000, max(args.requests // 80, 3), 1)]
                    made = [("GET /health", 0, None, args.requests, 1)]
                    made += [(name, rows, bodies(client, data, rows), n, t)
                            for name, rows, n, t in cases]
                for name, rows, body, n, threads in made:
                    m = measure(url, body, n, threads)
                    rows_s = f"{m['requests/s'] * rows:.0f}" if rows else "-"
                    print(f"{run.name:<14} {name:<22} {m['requests/s']:>10.1f} "
                          f"{rows_s:>10} {m['p50 ms']:>8.2f} "
                          f"{m['p99 ms']:>8.2f}")
            finally:
                process.terminate()
                process.wait(timeout=60)


if __name__ == "__main__":
    main()

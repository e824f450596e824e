"""How long `mlspec check specs/hill.mlspec` takes, as a user sees it (a new process
each time): the median of 5 runs after one warm-up, against the 0.5 s target.

    python bench/check_time.py [SPEC] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec", nargs="?", default=str(ROOT / "specs" / "hill.mlspec"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    command = [sys.executable, "-m", "mlspec", "check", args.spec]
    subprocess.run(command, check=True)  # warm-up: caches, page cache
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run(command, check=True)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(f"mlspec check {Path(args.spec).name}: median {median:.3f} s of {args.runs} "
          f"(min {min(times):.3f}, max {max(times):.3f}); target 0.5 s: "
          f"{'met' if median < 0.5 else 'MISSED'}")


if __name__ == "__main__":
    main()

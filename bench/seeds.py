"""8 seeds of W1 (the hill net, 4,000 steps, train and valid metrics every step) trained
at once as one vmapped program, against 8 separate runs, in one process, alternating.

    python bench/seeds.py [--seeds 8] [--reps 2] [--steps 4000]

Prints wall times (compile included, since that is what a user waits for) and the ratio;
the issue's target is at most 0.8 on a CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("MLSPEC_COMPILATION_CACHE", "0")  # compile every time, both ways

import mlspec  # noqa: E402

SPEC = Path(__file__).resolve().parent.parent / "specs" / "hill.mlspec"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4000)
    args = parser.parse_args()
    spec = mlspec.load(SPEC)
    together, separate = [], []
    for _ in range(args.reps):
        started = time.perf_counter()
        result = mlspec.run(spec, {"train.steps": args.steps, "train.seeds": args.seeds})
        together.append(time.perf_counter() - started)
        assert len(result.members) == args.seeds
        started = time.perf_counter()
        for seed in range(args.seeds):
            mlspec.run(spec, {"train.steps": args.steps, "train.seed": 42 + seed})
        separate.append(time.perf_counter() - started)
    t, s = statistics.median(together), statistics.median(separate)
    print(f"{args.seeds} seeds of W1 ({args.steps} steps): together {t:.2f} s, "
          f"separately {s:.2f} s, ratio {t / s:.2f} (target at most 0.8)")


if __name__ == "__main__":
    main()

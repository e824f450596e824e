"""How long `mlspec check` takes, as a user sees it (a new process each time): the median
of 5 runs after one warm-up, against its target: 0.5 s for specs/hill.mlspec (or SPEC),
2 s for `--sweep`, a sweep of 100,000 members (4 widths x 25 learning rates x 10 dropout
rates x 100 seeds), which `check` validates without resolving each member.

    python bench/check_time.py [SPEC] [--runs N]
    python bench/check_time.py --sweep [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SWEEP = """param hidden = 16
param rate = 0.1
model wide {
    dense(hidden) -> relu
    dropout(rate)
    dense(2)
}
data {
    train = hill(n=1000)
    valid = hill(n=200, seed=1)
}
train {
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=0.01)
    steps     = 100
}
sweep {
    hidden     = [16, 32, 64, 128]
    train.optimizer.learning_rate = [%s]
    rate       = [%s]
    train.seed = [%s]
}
"""


def sweep_spec(folder: Path) -> Path:
    rates = ", ".join(f"{0.001 * (i + 1):g}" for i in range(25))
    dropout = ", ".join(f"{0.05 * i:g}" for i in range(10))
    seeds = ", ".join(str(i) for i in range(100))
    path = folder / "sweep100k.mlspec"
    path.write_text(SWEEP % (rates, dropout, seeds))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec", nargs="?", default=str(ROOT / "specs" / "hill.mlspec"))
    parser.add_argument("--sweep", action="store_true",
                        help="time a generated sweep of 100,000 members instead")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        spec = sweep_spec(Path(folder)) if args.sweep else Path(args.spec)
        target = 2.0 if args.sweep else 0.5
        command = [sys.executable, "-m", "mlspec", "check", str(spec)]
        subprocess.run(command, check=True)  # warm-up: caches, page cache
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run(command, check=True)
            times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(f"mlspec check {spec.name}: median {median:.3f} s of {args.runs} "
          f"(min {min(times):.3f}, max {max(times):.3f}); target {target} s: "
          f"{'met' if median < target else 'MISSED'}")


if __name__ == "__main__":
    main()

"""How long `mlspec check` takes, as a user sees it (a new process each time): the median
of 5 runs after one warm-up, against its target: 0.5 s for specs/hill.mlspec (or SPEC),
2 s for a sweep of 100,000 members, which `check` validates without resolving each
member: `--sweep` (4 widths x 25 learning rates x 10 dropout rates x 100 seeds) or
`--sweep optimizer` (iris, 10 widths x 10 learning rates x 10 seeds x 10 values each of
adam's b1 and b2, arguments that the spec's optimizer call leaves out).

    python bench/check_time.py [SPEC] [--runs N]
    python bench/check_time.py --sweep [dropout|optimizer] [--runs N]
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


OPTIMIZER_SWEEP = """param h = 4
param lr = 0.01
model net {
    dense(h) -> relu
    dense(classes)
}
data {
    source = iris
}
train {
    loss      = softmax_cross_entropy
    optimizer = adam(learning_rate=lr)
    steps     = 100
}
sweep {
    lr = [%s]
    train.seed = [%s]
    train.optimizer.b1 = [%s]
    train.optimizer.b2 = [%s]
    h = [%s]
}
"""


def _values(first: float, step: float, count: int) -> str:
    return ", ".join(f"{first + step * i:g}" for i in range(count))


def sweep_spec(folder: Path, case: str) -> Path:
    path = folder / f"sweep100k-{case}.mlspec"
    if case == "optimizer":
        path.write_text(OPTIMIZER_SWEEP % (_values(0.001, 0.001, 10), _values(0, 1, 10),
                                           _values(0.8, 0.01, 10), _values(0.99, 0.001, 10),
                                           _values(2, 2, 10)))
    else:
        path.write_text(SWEEP % (_values(0.001, 0.001, 25), _values(0, 0.05, 10),
                                 _values(0, 1, 100)))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec", nargs="?", default=str(ROOT / "specs" / "hill.mlspec"))
    parser.add_argument("--sweep", nargs="?", const="dropout", choices=["dropout", "optimizer"],
                        help="time a generated sweep of 100,000 members instead")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        spec = sweep_spec(Path(folder), args.sweep) if args.sweep else Path(args.spec)
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

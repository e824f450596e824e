"""Searches: is the sampler real, and does training trials together pay?

1. TPE against random search at equal budget, over several seeds, on a 3-axis space (two
   log-uniform rates, the learning rate and the l2 weight, and a choice of momentum): a
   linear fit by sgd whose best rate sits in a narrow band. TPE's best trial should beat
   random's more often than not; the counts are printed.
2. A 32-trial search trained 8 at a time (one `mlspec run`) against the same 32 trials
   run one by one, each `mlspec run --set ...` in a fresh process; the runs alternate and
   the medians are compared: the search should take at most 0.4x the time.

    python bench/search.py [--seeds N] [--reps N] [--only sampler|together]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TASK = """param lr = 0.1
param wd = 0.001
param momentum = 0.0
model m {
    dense(1)
}
data {
    train = linear(n=512, seed=0)
    valid = linear(n=512, seed=1)
}
train {
    loss = mse + wd * l2
    optimizer = sgd(lr, momentum=momentum)
    steps = STEPS
    seed = SEED
}
"""

SPACE = """sweep {
    lr = loguniform(1e-4, 3)
    wd = loguniform(1e-6, 1)
    momentum = choice(0.0, 0.5, 0.9)
}
search {
    method = METHOD
    trials = 32
    together = 8
    metric = valid.loss
}
"""


def sampler(seeds: int) -> None:
    import mlspec

    wins = {"tpe": 0, "random": 0, "tie": 0}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(seeds):
            best = {}
            for method in ("tpe", "random"):
                spec = Path(folder) / f"{method}_{seed}.mlspec"
                spec.write_text((TASK + SPACE).replace("STEPS", "3").replace(
                    "SEED", str(seed)).replace("METHOD", method))
                result = mlspec.run(spec)
                best[method] = result.members[0].metrics["valid.loss"]
            winner = "tie" if best["tpe"] == best["random"] else min(best, key=best.get)
            wins[winner] += 1
            print(f"seed {seed}: best valid.loss tpe {best['tpe']:.5f}  random "
                  f"{best['random']:.5f}  -> {winner}", flush=True)
    print(f"TPE beat random in {wins['tpe']} of {seeds} seeds (random won {wins['random']}, "
          f"{wins['tie']} ties): {'ok' if wins['tpe'] > wins['random'] else 'FAILED'}")


def _mlspec(*args: str, cwd: str) -> float:
    """Seconds that `mlspec ARGS` takes; a diverged run (exit 1) is a trial like another."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mlspec", *args, "--quiet"], cwd=cwd, env=env,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode not in (0, 1) or (done.returncode == 1 and "diverged" not in
                                         done.stderr and "the loss became" not in done.stderr):
        raise SystemExit(f"mlspec {' '.join(args)} failed:\n{done.stderr}")
    return time.perf_counter() - started


def together(reps: int) -> None:
    import pandas as pd

    searched, one_by_one = [], []
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "search.mlspec"
        spec.write_text((TASK + SPACE).replace("STEPS", "300").replace("SEED", "0").replace(
            "METHOD", "random"))
        single = Path(folder) / "single.mlspec"
        single.write_text(TASK.replace("STEPS", "300").replace("SEED", "0"))
        trials = None
        for rep in range(reps):
            searched.append(_mlspec("run", str(spec), "--out", f"search{rep}", cwd=folder))
            if trials is None:  # the search's own trials, run one by one
                trials = pd.read_csv(Path(folder) / "search0" / "trials.csv")
            started = time.perf_counter()
            for i, row in trials.iterrows():
                _mlspec("run", str(single), "--out", f"single{rep}_{i}", "--set",
                        f"lr={row['lr']!r}", "--set", f"wd={row['wd']!r}", "--set",
                        f"momentum={row['momentum']!r}", cwd=folder)
            one_by_one.append(time.perf_counter() - started)
            print(f"rep {rep}: search {searched[-1]:.1f} s, one by one "
                  f"{one_by_one[-1]:.1f} s", flush=True)
    ratio = statistics.median(searched) / statistics.median(one_by_one)
    print(f"32 trials: 8 at a time {statistics.median(searched):.1f} s, one by one in fresh "
          f"processes {statistics.median(one_by_one):.1f} s (medians of {reps}): ratio "
          f"{ratio:.3f} (target <= 0.4): {'ok' if ratio <= 0.4 else 'FAILED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", choices=["sampler", "together"])
    args = parser.parse_args()
    if args.only != "together":
        sampler(args.seeds)
    if args.only != "sampler":
        together(args.reps)


if __name__ == "__main__":
    main()

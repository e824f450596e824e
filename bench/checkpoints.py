"""What asynchronous orbax checkpoints (`train { checkpoint_every = N }`) cost a run.

    PYTHONPATH=. python bench/checkpoints.py [--quick]

Trains the 256-256 MLP workload of bench/workloads.py (W3, bench/specs/mlp256.mlspec) with
`checkpoint_every = 200`, chunked as `mlspec run` chunks it, with and without saving the
checkpoints (the same chunks both times, compiled beforehand), alternately `--repeats`
times, and prints the training time of each, the cost per save (what training waits: the
copy off the device and the handing over to orbax's thread; and the whole cost, the extra
training time over the saves) and the overhead, which should stay under 10%. Then the same
for the tiny hill net (specs/hill.mlspec, 4000 steps, a checkpoint every 500), where one
save outweighs hundreds of steps.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.workloads import SPECS  # noqa: E402


def _trained(program, folder: Path | None) -> tuple[float, object]:
    from mlspec.cli.train import PROGRESS_UPDATES
    from mlspec.runtime.checkpoints import attach
    from mlspec.runtime.training import Training

    training = Training(program, updates=PROGRESS_UPDATES)
    if folder is not None:
        attach(training, folder)
    started = time.perf_counter()
    training.run()  # waits for the last save to be on disk, too
    return time.perf_counter() - started, training


def measure(name: str, spec: Path, overrides: dict, repeats: int) -> dict:
    from mlspec.runtime.runner import plan

    program = plan(spec, overrides).program
    _trained(program, None)  # compiles
    plain, saving, saves, waited = [], [], 0, 0.0
    for _ in range(repeats):
        plain.append(_trained(program, None)[0])
        with tempfile.TemporaryDirectory() as folder:
            seconds, training = _trained(program, Path(folder))
            saving.append(seconds)
            saves, waited = training.checkpoints.saves, training.checkpoints.save_time
    base, with_saves = min(plain), min(saving)
    row = {"workload": name, "steps": int(training.counts.sum()),
           "chunks": -(-len(training.counts) // training.chunk), "saves": saves,
           "train_s": base, "train_with_saves_s": with_saves,
           "wait_per_save_ms": 1000 * waited / max(saves, 1),
           "cost_per_save_ms": 1000 * (with_saves - base) / max(saves, 1),
           "overhead": (with_saves - base) / base}
    print(f"{name}: {row['steps']} steps in {row['chunks']} chunks, {saves} saves; "
          f"training {base:.3f} s without, {with_saves:.3f} s with checkpoints "
          f"(best of {repeats}); per save {row['wait_per_save_ms']:.1f} ms waited, "
          f"{row['cost_per_save_ms']:.1f} ms in all; overhead {100 * row['overhead']:+.1f}%",
          flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    mlp = {"train.checkpoint_every": 200}
    if args.quick:
        from mlspec.semantics.overrides import parse_override

        mlp.update([parse_override("data.train=hyperplane(n=20000, dim=100, seed=0)")])
    row = measure("mlp256", SPECS["mlp256"], mlp, repeats)
    measure("hill", SPECS["hill"], {"train.checkpoint_every": 500}, repeats)
    if row["overhead"] > 0.10:
        print(f"FAIL: checkpoints cost {100 * row['overhead']:.1f}% of the MLP's training "
              "time (at most 10%)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

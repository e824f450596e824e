"""The first command and the second call: mlspec against the same work hand-written.

    python bench/first_command.py                   # both parts, 3 repetitions (~4 min)
    python bench/first_command.py --part process --reps 5
    python bench/first_command.py --part inprocess --only W1

Part `process`, a user's first command: `mlspec run specs/hill.mlspec --out DIR` (the
whole process: imports, training, run folder, final metrics printed, three plots) against
bench/hill_by_hand.py (the same work as a tutorial-style script: train, print the final
metrics, write the history, the parameters and the three plots), each in a fresh process,
alternating, the order swapped every repetition. mlspec runs with its persistent
compilation cache warm (a private cache folder, filled by an untimed run first); the
script compiles, as a script following the tutorial does. `hand_strong` is the script
with the stronger training function (integer-label loss, train metrics from the
gradient's forward pass: `--strong`); `hand_cached` is that script with jax's persistent
compilation cache on and warm as well (`--cache`, every program cached). Besides the wall
time, `results` is when the final metrics appeared on stdout (the plots come after them
in the scripts, and in mlspec since it draws them after printing).

Part `inprocess`, a user calling again: in one fresh process per workload (W1: the hill
spec; W3: the 256-256 MLP, bench/workloads.py), with the persistent cache off: the
hand-written run and `mlspec.run` once each (cold), then, alternating, `--reps` more of
each: the hand-written code calls the jitted function it kept (its data, init and history
made anew each time, as in bench/workloads.py), mlspec calls `mlspec.run(spec)` again.
Also counts the XLA compiles inside mlspec's repeated runs (from jax.monitoring; 0 when
the compiled program is reused).

Prints medians and the ratios mlspec / hand (below 1: mlspec is faster). The machine may
be shared: the load average is printed, and the runs alternate so that load falls on both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

MARK = "FIRST_COMMAND "
TARGETS = {"process": 0.7, "W1": 0.6, "W3": 1.0}


# --------------------------------------------------------------------------- process


def _timed(cmd: list[str], env: dict, results_line: str) -> dict:
    """Wall time of `cmd` and when a stdout line containing `results_line` appeared."""
    with tempfile.TemporaryFile("w+") as err:  # a pipe could fill up unread
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                cwd=ROOT, env=env)
        results = None
        for line in proc.stdout:
            if results is None and results_line in line:
                results = time.perf_counter() - started
        code = proc.wait()
        total = time.perf_counter() - started
        if code != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed ({code}): {err.read()[-2000:]}")
    return {"total_s": total, "results_s": results}


def part_process(reps: int) -> dict[str, list[dict]]:
    python = sys.executable
    base_env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    base_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), base_env.get("PYTHONPATH", "")])
    times: dict[str, list[dict]] = {"mlspec": [], "hand": [], "hand_strong": [],
                                    "hand_cached": []}
    with tempfile.TemporaryDirectory(prefix="mlspec-first-") as tmp:
        tmp = Path(tmp)
        mlspec_env = {**base_env, "XDG_CACHE_HOME": str(tmp / "cache"),
                      "MLSPEC_COMPILATION_CACHE": "1"}
        hand_env = {**base_env, "MLSPEC_COMPILATION_CACHE": "0"}
        n = 0

        def way(name: str):
            nonlocal n
            n += 1
            out = tmp / f"{name}-{n}"
            if name == "mlspec":
                return _timed([python, "-m", "mlspec", "run", "specs/hill.mlspec", "--out",
                               str(out)], mlspec_env, "final metrics")
            flags = ["--strong"] if name != "hand" else []
            if name == "hand_cached":
                flags += ["--cache", str(tmp / "hand-cache")]
            return _timed([python, str(HERE / "hill_by_hand.py"), str(out), *flags],
                          hand_env, "train_accuracy")

        for name in times:  # untimed: fills mlspec's cache, warms the page cache
            way(name)
        for rep in range(reps):
            order = list(times) if rep % 2 == 0 else list(reversed(times))
            for name in order:
                times[name].append(way(name))
                print(f"  [process rep {rep + 1}/{reps}] {name}: "
                      f"{times[name][-1]['total_s']:.2f} s", file=sys.stderr, flush=True)
    return times


# ------------------------------------------------------------------------- in process


def worker(workload: str, reps: int) -> dict:
    """Runs in a fresh process: the cold runs, then `reps` alternating warm ones."""
    import jax
    import jax.numpy as jnp
    import pandas as pd
    import workloads as W

    import mlspec

    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **_: compiles.append(event)
        if event == "/jax/core/compile/backend_compile_duration" else None)
    sizes = W.FULL
    setup = W.hand_setup(workload, sizes)
    train = jax.jit(setup.make_train())  # the hand-written code keeps its jitted function

    def hand() -> tuple[float, float]:
        t0 = W.now()
        (x, y), (xv, yv) = setup.load()
        args = [jnp.asarray(x), jnp.asarray(y), jnp.asarray(xv), jnp.asarray(yv)]
        init_key, _, shuffle_key = W.keys(setup.seed)
        params = setup.model.init(init_key, args[0][:1])
        args = [params, shuffle_key, *args] if setup.minibatch else [params, *args]
        _, history, final = train(*args)
        history, final = jax.device_get((history, final))
        train_h, valid_h = history
        pd.DataFrame({**{f"train.{k}": v for k, v in train_h.items()},
                      **{f"valid.{k}": v for k, v in valid_h.items()}})
        return W.now() - t0, float(final[1]["accuracy"])

    path, overrides = W.mlspec_overrides(workload, sizes)

    def ours() -> tuple[float, float]:
        t0 = W.now()
        result = mlspec.run(path, overrides)
        return W.now() - t0, result.metrics["valid.accuracy"]

    cold = {"hand": hand()[0], "mlspec": ours()[0]}
    out = {"cold": cold, "hand": [], "mlspec": [], "compiles": [], "valid_acc": set()}
    for rep in range(reps):
        for name in (("hand", "mlspec") if rep % 2 == 0 else ("mlspec", "hand")):
            before = len(compiles)
            seconds, accuracy = hand() if name == "hand" else ours()
            out[name].append(seconds)
            if name == "mlspec":
                out["compiles"].append(len(compiles) - before)
                out["valid_acc"].add(accuracy)
    out["valid_acc"] = sorted(out["valid_acc"])
    return out


def part_inprocess(workloads: list[str], reps: int) -> dict[str, dict]:
    env = {**os.environ, "MLSPEC_COMPILATION_CACHE": "0"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    results = {}
    for workload in workloads:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker",
                               workload, "--reps", str(reps)], capture_output=True, text=True,
                              cwd=ROOT, env=env, timeout=1800)
        lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"worker {workload} failed: {proc.stderr[-2000:]}")
        results[workload] = json.loads(lines[-1][len(MARK):])
        print(f"  [in process] {workload} done", file=sys.stderr, flush=True)
    return results


# ---------------------------------------------------------------------------- report


def _median(values) -> float:
    return statistics.median(values)


def report(process: dict | None, inprocess: dict | None, reps: int, loads) -> str:
    lines = [f"medians of {reps} repetition(s), seconds; load average (1 min) at start / "
             f"end: {loads[0]:.2f} / {loads[1]:.2f}"]
    if process:
        lines += ["", "whole process: mlspec run specs/hill.mlspec (warm persistent cache) "
                      "vs bench/hill_by_hand.py",
                  f"  {'way':12} {'total':>7} {'results':>8}   all totals"]
        for name, rows in process.items():
            totals = [r["total_s"] for r in rows]
            results = [r["results_s"] for r in rows if r["results_s"] is not None]
            lines.append(f"  {name:12} {_median(totals):7.2f} "
                         f"{_median(results) if results else float('nan'):8.2f}   "
                         + " ".join(f"{t:.2f}" for t in totals))
        ours = _median([r["total_s"] for r in process["mlspec"]])
        ours_results = _median([r["results_s"] for r in process["mlspec"]])
        for other in ("hand", "hand_strong", "hand_cached"):
            theirs = _median([r["total_s"] for r in process[other]])
            theirs_results = _median([r["results_s"] for r in process[other]])
            lines.append(f"  ratio mlspec / {other}: total {ours / theirs:.2f} (target "
                         f"<= {TARGETS['process']}), to the final metrics "
                         f"{ours_results / theirs_results:.2f}")
    if inprocess:
        lines += ["", "in one process: repeated runs (persistent cache off)",
                  f"  {'workload':8} {'hand cold':>9} {'ours cold':>9} {'hand warm':>9} "
                  f"{'ours warm':>9} {'ratio':>6} {'target':>6}  compiles  valid acc"]
        for workload, r in inprocess.items():
            hand, ours = _median(r["hand"]), _median(r["mlspec"])
            lines.append(f"  {workload:8} {r['cold']['hand']:9.2f} {r['cold']['mlspec']:9.2f} "
                         f"{hand:9.2f} {ours:9.2f} {ours / hand:6.2f} "
                         f"{TARGETS[workload]:6.1f}  {r['compiles']}  {r['valid_acc']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--part", choices=("both", "process", "inprocess"), default="both")
    parser.add_argument("--only", default="W1,W3", help="in-process workloads, e.g. W1")
    parser.add_argument("--json", type=Path, help="also write the raw timings here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(MARK + json.dumps(worker(args.worker, args.reps)), flush=True)
        return 0
    loads = [os.getloadavg()[0]]
    process = part_process(args.reps) if args.part in ("both", "process") else None
    inprocess = part_inprocess([w.strip() for w in args.only.split(",") if w.strip()],
                               args.reps) if args.part in ("both", "inprocess") else None
    loads.append(os.getloadavg()[0])
    print(report(process, inprocess, args.reps, loads))
    if args.json:
        args.json.write_text(json.dumps({"process": process, "inprocess": inprocess},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

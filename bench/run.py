"""Benchmark: mlspec against the same training written by hand (and other tools).

    python bench/run.py                 # every workload, 3 repetitions (~5 min on 2 cores)
    python bench/run.py --quick         # short runs, 1 repetition: a smoke test
    python bench/run.py --reps 5 --only W1,W3 --ways mlspec,hand
    python bench/run.py --inprocess     # no subprocesses (see "Memory" below)
    python bench/run.py --cached        # also mlspec with a warm persistent cache (~8 min)

Workloads (bench/workloads.py; specs in specs/ and bench/specs/):

    W1   hill net (2 sigmoid units, 2 logits, softmax CE, rmsprop 0.01), 4000 full-batch
         steps on hill n=10000 / valid 1000; loss, accuracy, false_pos, false_neg,
         pred_mean on train and valid after every step
    W1b  the same without per-step metrics (mlspec: eval_every = steps, so only the first
         and last rows; hand-written: no metrics in the scan, the final ones after it)
    W2   100-d logistic regression (dense(1), sigmoid BCE, sgd 2.0), hyperplane 10,000
         train / 10,000 valid, 5000 full-batch steps, the W1 metrics every step
    W2L  the W2 model fitted by L-BFGS: scikit-learn LogisticRegression(lbfgs), mlspec
         `optimizer = lbfgs()` for 30 steps, and optax's L-BFGS loop by hand
    W3   256-256 ReLU MLP -> 1 logit on hyperplane(n=100000, dim=100), batch 256, 2 epochs
         (2 x 390 steps), adam 1e-3, loss and accuracy on the full train set and on a
         10,000-row valid set every 100 steps

Ways: `mlspec` (mlspec.run on the spec file), `hand` (flax.linen + optax + one jitted
lax.scan with metrics from a separate model.apply, as in the tutorial; on W1 and W1b the
tutorial's loss too, `optax.softmax_cross_entropy` against one-hot targets made once before
the loop), `hand_aux` (W1: the same, but the train metrics reuse the logits of the
gradient's forward pass, as mlspec does; on W2 XLA merges the two identical forward passes
by itself), `hand_int` (W1, W1b: `hand` with optax's integer-label loss,
`softmax_cross_entropy_with_integer_labels`, a stronger baseline than the tutorial's),
`sklearn` (W2L), `keras` (Keras 3, JAX backend) and `torch` (eager), the last two only
when importable (else a "not installed" row). With `--cached`, also `mlspec_cached`: see
below. `--ways mlspec,hand` runs only those ways.

Method. The driver runs, for each repetition, every workload, and within it every way
(rotating the order of the ways from one repetition to the next), each in a fresh
subprocess (`python bench/run.py --worker W WAY`), so that every way starts from a cold
process and has its own peak RSS. The worker imports what its way needs and runs a
trivial jit (so the backend's start-up is not counted), then trains once:

- `total`: the wall time of the whole run as a user would write it: for mlspec,
  `mlspec.run(spec, overrides)` (parse, resolve, data generation, init, trace, compile,
  train, history DataFrame); by hand, data generation, device transfer, `model.init`, the
  jitted call and the history as a DataFrame.
- `compile`: inside that run, the time jax spends tracing, lowering and compiling with
  XLA, for every jit (eager ops of `init` included), from jax's own monitoring events
  (`jax.monitoring`; see bench/timing.py: nested events are counted once).
- `train`: inside that run, the execution time of the jitted calls: `jax.jit` is wrapped
  for the duration so that each call blocks on its result (`jax.block_until_ready`) and
  is timed, less the compile time inside it. mlspec's runner jits `Trainer.run_blocks`
  (the whole run as one scan) and `Trainer.finish`; the hand-written code one function.
- `other` = total - compile - train: parsing, resolving, data generation, eager `init`
  dispatch, building the history; mostly Python.

`--crosscheck` runs each jax way a second time in the same process with compilation and
execution timed apart the usual way: `jax.jit(f).lower(*args).compile()`, then the
compiled executable blocked on (mlspec: through its Trainer, new Trainer, new trace) and
adds those medians as `compile2` and `train2`. sklearn reports its `fit` as `train`;
PyTorch its training loop; Keras its `fit` (compiles included) as `train` and jax's
compile events over the whole worker as `compile`.

Compilation cache. Every way compiles from scratch: the workers run without
JAX_COMPILATION_CACHE_DIR and with MLSPEC_COMPILATION_CACHE=0, which turns off the
persistent compilation cache that `mlspec.run` otherwise keeps in ~/.cache/mlspec/jax (a
row's note says "persistent cache on" if one was active anyway). `--cached` adds the way
`mlspec_cached`: mlspec with that cache on, in a private temporary cache folder that an
untimed run of the same workload fills just before the timed one: what a user sees when
running a spec again. The hand-written code could use jax's cache as well; it does not
here, since a user following the tutorial would not.

The table shows medians over the repetitions; `ratio` rows divide mlspec's medians by the
other way's (>1: mlspec is slower or bigger). The load average is printed because this
machine may be shared: timings under load are noisy and slower.

Memory. `peak RSS` is the worker process's own `getrusage(RUSAGE_SELF).ru_maxrss` after
its run, so it covers the imports and one whole run; `base` is the same reading before the
run (after imports and the warm-up jit). With `--inprocess` every way runs in the driver
process instead, and ru_maxrss is the process's peak so far (monotone; only the first
way's reading means much).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

WORKLOADS: dict[str, tuple[str, list[str]]] = {
    "W1": ("hill net, 4000 steps, metrics every step",
           ["mlspec", "hand", "hand_aux", "hand_int", "keras", "torch"]),
    "W1b": ("hill net, 4000 steps, no per-step metrics",
            ["mlspec", "hand", "hand_int", "keras", "torch"]),
    "W2": ("100-d logit, sgd, 5000 steps, metrics every step",
           ["mlspec", "hand", "keras", "torch"]),
    "W2L": ("100-d logit, L-BFGS", ["mlspec", "hand", "sklearn"]),
    "W3": ("MLP 256-256, 100k rows, batch 256, 2 epochs", ["mlspec", "hand", "keras", "torch"]),
}
OPTIONAL = {"keras": "keras", "torch": "torch"}
JAX_WAYS = ("mlspec", "mlspec_cached", "hand", "hand_aux", "hand_int", "keras")
PAIRS = [("mlspec", "hand"), ("mlspec", "hand_aux"), ("mlspec", "hand_int"), ("mlspec", "sklearn"),
         ("mlspec", "keras"), ("mlspec", "torch"), ("mlspec_cached", "hand")]
MARK = "BENCH_RESULT "


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- worker


def worker(workload: str, way: str, quick: bool, crosscheck: bool = False) -> dict:
    """Runs one way of one workload in this process (see the module docstring)."""
    import workloads

    sizes = workloads.QUICK if quick else workloads.FULL
    if way in ("keras", "torch"):
        import others

        fn = {"keras": others.way_keras, "torch": others.way_torch}[way]
    else:
        fn = workloads.WAYS["mlspec" if way == "mlspec_cached" else way]
    if way in JAX_WAYS and way != "keras":
        import flax.linen  # noqa: F401
        import jax
        import jax.numpy as jnp
        import optax  # noqa: F401
        import pandas  # noqa: F401

        import mlspec.catalog.sources  # noqa: F401
        import mlspec.compiler.trainer  # noqa: F401
        import mlspec.runtime.loading  # noqa: F401
        import mlspec.runtime.runner  # noqa: F401

        jax.block_until_ready(jax.jit(lambda v: v + 1)(jnp.ones(3)))
    elif way == "sklearn":
        import sklearn.linear_model  # noqa: F401

        import mlspec.catalog.sources  # noqa: F401
    from timing import JitTimer

    if way in JAX_WAYS and way != "keras":
        from mlspec.compiler.trainer import clear_programs

        clear_programs()  # with --inprocess, a way's programs are never an earlier way's
    base = maxrss_mb()
    if way in JAX_WAYS:
        # Keras calls jax.jit inside fit: time its compiles, but leave its jit alone.
        with JitTimer(patch_jit=way != "keras") as timer:
            out = fn(workload, sizes)
        out["compile_s"] = timer.compile_s
        out["compile_breakdown"] = timer.breakdown()
        if timer.patch_jit:
            out["train_s"] = timer.exec_s
        import jax

        if jax.config.jax_compilation_cache_dir:
            out["note"] = (out.get("note", "") + " persistent cache on").strip()
    else:
        out = fn(workload, sizes)
    pieces = out.pop("_pieces", None)
    out["rss_mb"] = maxrss_mb()
    out["rss_base_mb"] = base
    if out.get("train_s") is not None and way != "keras":  # keras's fit time holds compiles
        out["other_s"] = out["total_s"] - out.get("compile_s", 0.0) - out["train_s"]
    if crosscheck and pieces is not None:
        out.update(pieces())
    return out


def run_way(workload: str, way: str, quick: bool, inprocess: bool, crosscheck: bool) -> dict:
    if inprocess:
        try:
            return worker(workload, way, quick, crosscheck)
        except Exception as exc:  # noqa: BLE001 - reported as an error row
            return {"error": f"{type(exc).__name__}: {exc}"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", workload, way]
    cmd += ["--quick"] * quick + ["--crosscheck"] * crosscheck
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env["MLSPEC_COMPILATION_CACHE"] = "0"
    with tempfile.TemporaryDirectory(prefix="mlspec-bench-cache-") as cache:
        try:
            if way == "mlspec_cached":  # a private cache, filled by an untimed run
                env |= {"MLSPEC_COMPILATION_CACHE": "1", "XDG_CACHE_HOME": cache}
                subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
        except subprocess.TimeoutExpired:
            return {"error": "timed out after 1200 s"}
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


# ----------------------------------------------------------------------------- report


def median(results: list[dict], key: str) -> float | None:
    values = [r[key] for r in results if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(value, digits: int = 2, width: int = 8) -> str:
    if value is None:
        return "-".rjust(width)
    return f"{value:.{digits}f}".rjust(width)


# (key, header, digits, width)
COLUMNS = [("total_s", "total", 2, 8), ("compile_s", "compile", 2, 8),
           ("train_s", "train", 2, 8), ("other_s", "other", 2, 7),
           ("rss_mb", "peak RSS", 0, 8), ("rss_base_mb", "base", 0, 5),
           ("train_acc", "train acc", 4, 9), ("valid_acc", "valid acc", 4, 9)]
CROSSCHECK = [("compile2_s", "compile2", 2, 8), ("train2_s", "train2", 2, 7)]
RATIOS = {"total_s": "total", "compile_s": "compile", "train_s": "train", "other_s": "other",
          "rss_mb": "peak RSS"}


def report(selected: list[str], results: dict, missing: set[str], reps: int,
           loads: tuple) -> str:
    columns = COLUMNS + (CROSSCHECK if any("compile2_s" in r for rs in results.values()
                                           for r in rs) else [])
    lines = [f"medians of {reps} repetition(s); times in seconds, RSS in MB (peak RSS of "
             "a fresh worker process, imports included);",
             "load average (1 min) at start / end: "
             + " / ".join(f"{x:.2f}" for x in loads), ""]
    header = f"{'workload':8} {'way':13} " + " ".join(h.rjust(n) for _, h, _, n in columns)
    lines += [header + "  note", "-" * (len(header) + 6)]
    ratio_lines = []
    for w in selected:
        ways = list(WORKLOADS[w][1])
        if (w, "mlspec_cached") in results:
            ways.insert(1, "mlspec_cached")
        for way in ways:
            if way in missing:
                lines.append(f"{w:8} {way:13} not installed")
                continue
            if (w, way) not in results:  # left out with --ways
                continue
            rs = [r for r in results.get((w, way), []) if "error" not in r]
            errors = [r["error"] for r in results.get((w, way), []) if "error" in r]
            if not rs:
                lines.append(f"{w:8} {way:13} ERROR {errors[0] if errors else '?'}")
                continue
            note = rs[-1].get("note", "")
            if any(abs(r["check_valid_acc"] - r["valid_acc"]) > 1e-6 for r in rs
                   if r.get("check_valid_acc") is not None):
                note += " (second run's valid acc differs)"
            if errors:
                note += f" ({len(errors)} failed)"
            cells = " ".join(fmt(median(rs, k), d, n) for k, _, d, n in columns)
            lines.append(f"{w:8} {way:13} {cells}  {note}".rstrip())
        lines.append("")
        for mine, other in PAIRS:
            ours = [r for r in results.get((w, mine), []) if "error" not in r]
            theirs = [r for r in results.get((w, other), []) if "error" not in r]
            if not ours or not theirs:
                continue
            cells = []
            for key in RATIOS:
                a, b = median(ours, key), median(theirs, key)
                cells.append(fmt(a / b, 2, 8) if a is not None and b else fmt(None))
            ratio_lines.append(f"{w:8} {mine + ' / ' + other:22} " + " ".join(cells))
    lines += ["ratios of medians (mlspec / other; >1: mlspec slower or bigger)",
              f"{'workload':8} {'':22} " + " ".join(f"{h:>8}" for h in RATIOS.values())]
    lines += ratio_lines
    return "\n".join(lines)


# ------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=None,
                        help="repetitions (default 3, or 1 with --quick)")
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W3")
    parser.add_argument("--ways", default="",
                        help="comma-separated ways to run, e.g. mlspec,hand (default: all)")
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--inprocess", action="store_true",
                        help="run every way in this process (RSS then only a running peak)")
    parser.add_argument("--crosscheck", action="store_true",
                        help="repeat each jax way with lower().compile() timing (compile2, "
                             "train2)")
    parser.add_argument("--cached", action="store_true",
                        help="add mlspec_cached: mlspec with its persistent compilation cache "
                             "warm (a private cache folder, filled by an untimed run first)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--worker", nargs=2, metavar=("WORKLOAD", "WAY"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        out = worker(*args.worker, quick=args.quick, crosscheck=args.crosscheck)
        print(MARK + json.dumps(out), flush=True)
        return 0

    selected = [w.strip() for w in args.only.split(",") if w.strip()] or list(WORKLOADS)
    unknown = [w for w in selected if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    if args.cached and args.inprocess:
        parser.error("--cached needs a process per run; leave out --inprocess")
    os.environ["MLSPEC_COMPILATION_CACHE"] = "0"  # for --inprocess; workers get it too
    only_ways = {way.strip() for way in args.ways.split(",") if way.strip()}
    reps = args.reps if args.reps is not None else (1 if args.quick else 3)
    missing = {way for way, module in OPTIONAL.items()
               if importlib.util.find_spec(module) is None}
    load_start = os.getloadavg()[0]
    results: dict[tuple[str, str], list[dict]] = {}
    started = time.perf_counter()
    for rep in range(reps):
        for w in selected:
            ways = [way for way in WORKLOADS[w][1] if way not in missing
                    and (not only_ways or way in only_ways)]
            if args.cached:
                ways.insert(1, "mlspec_cached")
            k = rep % len(ways)
            for way in ways[k:] + ways[:k]:
                t0 = time.perf_counter()
                res = run_way(w, way, args.quick, args.inprocess, args.crosscheck)
                results.setdefault((w, way), []).append(res)
                what = res.get("error") or (
                    f"total {res['total_s']:.2f}s compile {res.get('compile_s', 0):.2f}s "
                    f"train {res.get('train_s', 0):.2f}s rss {res['rss_mb']:.0f}MB")
                print(f"[rep {rep + 1}/{reps} {time.perf_counter() - started:6.0f}s] "
                      f"{w} {way}: {what} ({time.perf_counter() - t0:.1f}s)",
                      file=sys.stderr, flush=True)
    print(report(selected, results, missing, reps, (load_start, os.getloadavg()[0])))
    if args.json:
        args.json.write_text(json.dumps(
            [{"workload": w, "way": way, **r} for (w, way), rs in results.items()
             for r in rs], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

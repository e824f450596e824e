"""Where mlspec's time goes, program by program, next to the hand-written program.

    python bench/programs.py                # W1, W1b, W3
    python bench/programs.py --only W3 --reps 3 --quick

In one process, for each workload: builds mlspec's Trainer (as `mlspec.run` does) and the
hand-written training function, then, `--reps` times and alternating, times
`jax.jit(f).lower(*args).compile()` and the compiled call (blocked on) of each program:
mlspec's `run_blocks` (all full blocks as one scan) and `finish` (the remainder block and
the final evaluation) and the hand-written scan. Prints the minimum over the repetitions
(the least disturbed by other load) and the size of each compiled program (XLA's HLO text,
in lines) as a rough measure of how much code XLA had to compile.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import workloads as W  # noqa: E402


def mlspec_programs(workload: str, sizes: W.Sizes):
    import jax
    import jax.numpy as jnp

    from mlspec.compiler.trainer import Trainer
    from mlspec.runtime.loading import load_data
    from mlspec.semantics.resolve import resolve
    from mlspec.syntax.reader import load

    path, overrides = W.mlspec_overrides(workload, sizes)
    program = resolve(load(path), overrides)
    dataset = load_data(program.data)
    data = {split: (jnp.asarray(x), jnp.asarray(y)) for split, (x, y) in
            dataset.splits.items() if split in ("train", "valid")}
    n = len(dataset["train"][0])

    def build(name):
        def make():
            trainer = Trainer(program, n)  # a new Trainer: a new trace each time
            state = trainer.init(program.train.seed, data["train"][0])
            count = trainer.schedule.blocks if name == "run_blocks" \
                else trainer.schedule.remainder
            return jax.jit(getattr(trainer, name), static_argnums=2), (state, data, count), 2
        return make

    schedule = Trainer(program, n).schedule
    programs = {}
    if schedule.blocks:
        programs[f"mlspec run_blocks ({schedule.blocks} x {schedule.eval_every})"] = \
            build("run_blocks")
    programs[f"mlspec finish (remainder {schedule.remainder})"] = build("finish")
    return programs


def hand_programs(workload: str, sizes: W.Sizes):
    import jax
    import jax.numpy as jnp

    setup = W.hand_setup(workload, sizes)
    (x, y), (xv, yv) = setup.load()
    arrays = [jnp.asarray(a) for a in (x, y, xv, yv)]

    def make():
        init_key, _, shuffle_key = W.keys(setup.seed)
        params = setup.model.init(init_key, arrays[0][:1])
        args = [params, shuffle_key, *arrays] if setup.minibatch else [params, *arrays]
        return jax.jit(setup.make_train()), tuple(args), None

    return {"hand scan": make}


def main(argv=None) -> int:
    import jax

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="W1,W1b,W3")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = W.QUICK if args.quick else W.FULL
    jax.block_until_ready(jax.jit(lambda v: v + 1)(jax.numpy.ones(3)))
    for workload in args.only.split(","):
        programs = {**mlspec_programs(workload, sizes), **hand_programs(workload, sizes)}
        best: dict[str, list[float]] = {name: [float("inf")] * 2 for name in programs}
        lines: dict[str, int] = {}
        for _ in range(args.reps):
            for name, make in programs.items():
                fn, call_args, static = make()
                jax.block_until_ready(call_args)
                t0 = W.now()
                lowered = fn.lower(*call_args)
                compiled = lowered.compile()
                compile_s = W.now() - t0
                run_args = call_args[:static] if static is not None else call_args
                t0 = W.now()
                jax.block_until_ready(compiled(*run_args))
                run_s = W.now() - t0
                best[name] = [min(best[name][0], compile_s), min(best[name][1], run_s)]
                lines[name] = compiled.as_text().count("\n")
        print(f"{workload}: min of {args.reps}   {'compile':>8} {'execute':>8} {'HLO lines':>9}")
        for name, (compile_s, run_s) in best.items():
            print(f"  {name:34} {compile_s:8.2f} {run_s:8.2f} {lines[name]:9d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

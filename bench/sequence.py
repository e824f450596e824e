"""The sequence examples against hand-written flax, and a graph against the same chain.

1. specs/reviews_lstm.mlspec and specs/reviews_attention.mlspec, each trained two ways on
   the same token-id arrays (mlspec's loader), the same sizes, optimizer, batches and steps:
   - mlspec: its Trainer's whole run (`run_all`: the scan over the steps, with the
     evaluations), compiled once with `jax.jit(...).lower(...).compile()`;
   - hand: bench/examples.py's flax module and training scan, compiled the same way.
2. graph vs chain: each of the two examples written as a graph (`h = review -> ...`,
   `output label = h -> dense(classes)`) against the chain of the spec file, both through
   mlspec.

Each compiled program runs `--repeats` times, the ways alternating (their order rotated
every repeat); the script prints the median execution time of each way and the ratios
(mlspec / hand, graph / chain; the target is at most 1.0x), the ratios of the fastest
runs and of the median process CPU times (both less swayed by other work on a shared
machine), the compile times, and whether the graph's lowered program (StableHLO text)
is the chain's.

`--epochs N` trains N epochs instead of the spec's 4 (46 steps each), for timings that
stand above the noise of a shared machine.

Usage: python bench/sequence.py [--repeats 9] [--epochs 4] [--only lstm|attention]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from examples import (  # noqa: E402
    SPECS,
    hand_reviews_attention,
    hand_reviews_lstm,
    hand_training,
    keys,
)

EXAMPLES = {"lstm": ("reviews_lstm", hand_reviews_lstm),
            "attention": ("reviews_attention", hand_reviews_attention)}
# `embedding(vocab, features)`: in a graph, embedding does not take the text input's
# vocabulary yet (`embedding(features=16)` there is an error today), so it is spelled out
GRAPHS = {
    "lstm": "    h = review -> embedding({vocab}, 16) -> lstm(32)\n",
    "attention": "    h = review -> embedding({vocab}, 32) -> position_embedding\n"
                 "    p = h -> attention(heads=2) -> global_avg_pool\n",
}


def graph_text(example: str, vocab: int) -> str:
    """The example's spec with its chain written as a graph of the same layers."""
    text = (SPECS / f"{EXAMPLES[example][0]}.mlspec").read_text()
    start, end = text.index("{", text.index("\nmodel ")) + 1, text.index("\n}\n")
    last = GRAPHS[example].splitlines()[-1].split("=")[0].strip()
    return text[:start] + "\n" + GRAPHS[example].format(vocab=vocab) \
        + f"    output label = {last} -> dense(classes)" + text[end:]


@dataclass
class Way:
    run: Callable[[], float]
    """One whole training, blocking; returns the final valid accuracy."""
    compile_s: float
    params: int
    steps: int
    program: str | None = None
    """The lowered StableHLO text (mlspec's ways)."""


def mlspec_program(program) -> Way:
    """mlspec's Trainer's whole run (`run_all`) of a resolved program, compiled."""
    import jax
    import jax.numpy as jnp

    from mlspec.compiler.trainer import Trainer
    from mlspec.runtime.loading import load_data

    dataset = load_data(program.data)
    trainer = Trainer(program, len(dataset["train"][1]))
    data = {split: jax.tree.map(jnp.asarray, arrays) for split, arrays in
            dataset.splits.items() if split in ("train", "valid")}
    state = trainer.init(program.train.seed, data["train"][0], jit=True)
    counts = trainer.schedule.counts()
    args = jax.block_until_ready((state, data, counts))
    t0 = time.perf_counter()
    lowered = jax.jit(trainer.run_all).lower(*args)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    params = sum(leaf.size for leaf in jax.tree.leaves(state["params"]))

    def run():
        _, rows = jax.block_until_ready(compiled(*args))
        return float(rows["valid.accuracy"][-1])

    return Way(run, compile_s, params, int(counts.sum()), lowered.as_text())


def resolved(example: str, graph: bool, vocab: int = 0, epochs: int | None = None):
    from mlspec.semantics.resolve import resolve
    from mlspec.syntax.parser import parse
    from mlspec.syntax.reader import load

    path = SPECS / f"{EXAMPLES[example][0]}.mlspec"
    spec = parse(graph_text(example, vocab), file=str(path)) if graph else load(path)
    return resolve(spec, {} if epochs is None else {"train.epochs": epochs})


def hand_way(example: str, program) -> Way:
    import jax
    import jax.numpy as jnp

    from mlspec.runtime.loading import load_data

    dataset = load_data(program.data)
    (x, y), (xv, yv) = dataset["train"], dataset["valid"]
    (vocab,) = [i.vocab for i in program.data.info.inputs]
    model = EXAMPLES[example][1](vocab)
    init_key, _, shuffle_key = keys(program.train.seed)
    params = model.init(init_key, jnp.asarray(x[:1]))
    train = hand_training(model, epochs=program.train.epochs, batch=program.train.batch,
                          eval_every=program.train.eval_every)
    args = jax.block_until_ready((params, shuffle_key, *map(jnp.asarray, (x, y, xv, yv))))
    t0 = time.perf_counter()
    compiled = jax.jit(train).lower(*args).compile()
    compile_s = time.perf_counter() - t0

    def run():
        _, _, (_, valid) = jax.block_until_ready(compiled(*args))
        return float(valid["accuracy"])

    steps = program.train.epochs * (len(x) // program.train.batch)
    return Way(run, compile_s, sum(leaf.size for leaf in jax.tree.leaves(params)), steps)


def alternate(ways: dict[str, Way], repeats: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, process CPU) seconds of each way's runs; the order rotates every repeat, so
    that with a multiple of 3 repeats each way runs as often first, second and last."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    names = list(ways)
    for way in ways.values():
        way.run()  # a first call apart (allocations, caches)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0, c0 = time.perf_counter(), time.process_time()
            ways[name].run()
            times[name].append((time.perf_counter() - t0, time.process_time() - c0))
    return times


def compare(example: str, repeats: int, epochs: int | None = None) -> list[dict]:
    program = resolved(example, graph=False, epochs=epochs)
    (vocab,) = [i.vocab for i in program.data.info.inputs]
    ways = {"mlspec": mlspec_program(program), "hand": hand_way(example, program),
            "mlspec_graph": mlspec_program(resolved(example, graph=True, vocab=vocab,
                                                             epochs=epochs))}
    params = {name: way.params for name, way in ways.items()}
    steps = {name: way.steps for name, way in ways.items()}
    # the same model and the same number of steps, three ways
    assert len(set(params.values())) == 1 and len(set(steps.values())) == 1, (params, steps)
    accuracy = {name: round(way.run(), 4) for name, way in ways.items()}
    times = alternate(ways, repeats)
    median = {name: statistics.median(w for w, _ in t) for name, t in times.items()}
    best = {name: min(w for w, _ in t) for name, t in times.items()}
    cpu = {name: statistics.median(c for _, c in t) for name, t in times.items()}
    rows = [{"example": EXAMPLES[example][0], "way": name, "params": params[name],
             "steps": steps[name], "compile_s": round(ways[name].compile_s, 2),
             "exec_median_s": round(median[name], 3), "exec_min_s": round(best[name], 3),
             "exec_cpu_median_s": round(cpu[name], 3),
             "exec_all_s": [round(w, 3) for w, _ in times[name]],
             "valid_acc": accuracy[name]} for name in ways]
    rows.append({"example": EXAMPLES[example][0],
                 "mlspec/hand": round(median["mlspec"] / median["hand"], 3),
                 "graph/chain": round(median["mlspec_graph"] / median["mlspec"], 3),
                 "mlspec/hand (min)": round(best["mlspec"] / best["hand"], 3),
                 "mlspec/hand (cpu)": round(cpu["mlspec"] / cpu["hand"], 3),
                 "graph/chain (min)": round(best["mlspec_graph"] / best["mlspec"], 3),
                 # the graph compiles to the very program of the chain (StableHLO text)
                 "graph program == chain program":
                     ways["mlspec_graph"].program == ways["mlspec"].program})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--only", choices=list(EXAMPLES))
    args = parser.parse_args(argv)
    import jax

    print(json.dumps({"backend": jax.default_backend(), "devices": len(jax.devices()),
                      "repeats": args.repeats, "epochs": args.epochs or "the spec's"}))
    for example in [args.only] if args.only else list(EXAMPLES):
        for row in compare(example, args.repeats, args.epochs):
            print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

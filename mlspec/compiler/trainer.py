"""Typed program -> a training run compiled as `jax.lax.scan`.

The run is pure functions of a state pytree (params, model state, optimizer state, step,
PRNG keys), so it can be vmapped over seeds and sharded over devices. Training is split
into blocks of `eval_every` steps; the first step of each block also records the metrics
of the current params, so rows of the history are "the model after `step` updates".
A block runs entirely on the device; the host only sees the stacked history.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlspec.catalog.layers import LAYERS
from mlspec.catalog.losses import LOSSES
from mlspec.catalog.metrics import METRICS, SplitInputs, TrainingInputs
from mlspec.catalog.traced import bind_tree, declared_names, traced_values, untraced
from mlspec.compiler.heads import Heads
from mlspec.compiler.model import (
    build_module,
    model_layers,
    takes_transposed_input,
    token_inputs,
    uses_train_mode,
)
from mlspec.compiler.schedule import make_schedule
from mlspec.semantics.program import Program
from mlspec.semantics.train import LossTerm

State = dict[str, Any]
Data = dict[str, tuple[jax.Array, jax.Array]]
Traced = dict[str, jax.Array]

TRACED_NAMES: tuple[str, ...] = declared_names(
    [cls for _, cls in LAYERS.items()] + [cls for _, cls in LOSSES.items()] + [LossTerm])
"""The names of the traced values (see mlspec.catalog.traced) that every training state
holds, each an array of the program's values (empty where the program has none): what a
run folder's state saves under them (`loss_weights`, `dropout_keep`, ...)."""

PROGRAMS_KEPT = 32
"""How many jitted functions `shared_jit` keeps (the least recently used go first)."""
_PROGRAMS: OrderedDict[tuple, Any] = OrderedDict()


def shared_jit(trainer: Trainer, name: str, make: Callable[[], Any]):
    """The jitted function `name` of every trainer with `trainer`'s structure, made once
    by `make()` and kept for the life of the process: a second run of the same spec
    shapes calls the program compiled for the first, with no trace and no compile. What
    tells programs apart is `Trainer.structure_key`; a new shape of the arguments (more
    rows, another chunk length) is a new trace under the same jitted function, as jax
    always does."""
    key = (trainer.structure_key(), name)
    fn = _PROGRAMS.get(key)
    if fn is None:
        fn = _PROGRAMS[key] = make()
        while len(_PROGRAMS) > PROGRAMS_KEPT:
            _PROGRAMS.popitem(last=False)
    else:
        _PROGRAMS.move_to_end(key)
    return fn


def clear_programs() -> None:
    """Forgets every kept program (the next run traces and compiles afresh)."""
    _PROGRAMS.clear()


def n_rows(x) -> int:
    """The rows of an input: one array's, or a dict of arrays' (all alike)."""
    return len(jax.tree.leaves(x)[0])


def take_rows(x, rows):
    """`x[rows]` of one array or of every array in a dict of inputs (or targets)."""
    return jax.tree.map(lambda a: a[rows], x)


def optax_code(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` of optax's optimizers under jax's standard dtype promotion,
    which optax is written for (adam's bias correction raises a Python float to the
    int32 step count). mlspec's own code keeps the promotion its caller chose: the tests
    run it strict."""
    with jax.numpy_dtype_promotion("standard"):
        return fn(*args, **kwargs)


def build_optimizer(program: Program, inject: bool = False) -> optax.GradientTransformation:
    """The optax transformation. With `inject`, the optimizer's numeric hyperparameters
    live in its state (`optax.inject_hyperparams`), so members of a sweep that differ only
    in them can share one compiled program, vmapped over their states."""
    train = program.train
    tx = train.optimizer.build_injected() if inject else train.optimizer.build()
    if train.clip_by_global_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(train.clip_by_global_norm), tx)
    return tx


class Pruning(NamedTuple):
    """Successive halving among members trained together (a search's `prune`): at every
    `every`-th step the members still training rank by `metric` and those past the best
    `keep` share stop (see `Trainer._rung`)."""

    keep: float
    every: int
    metric: str
    higher: bool


MEMBERS = "members"
"""The vmapped axis of members trained together, which pruning ranks across."""


class Trainer:
    """The compiled pieces of a program: flax module, optax transformation, and the pure
    functions that initialise and train a state."""

    def __init__(self, program: Program, n_train: int, inject: bool = False,
                 prune: Pruning | None = None):
        self.program = program
        self.n_train = n_train
        self.inject = inject
        self.prune = prune
        """With `prune`, the functions run vmapped over axis MEMBERS and the state holds
        `pruned`, a flag that makes a step do nothing, as early stopping's does."""
        self.module = build_module(program.model, token_inputs(program))
        self.tx = build_optimizer(program, inject)
        self.schedule = make_schedule(program, n_train)
        train = program.train
        self.terms = train.loss
        self.data_loss = train.data_loss
        info = program.data.info if program.data is not None else None
        self.outputs = Heads(program) if info is not None and info.outputs else None
        """With several outputs (see mlspec.compiler.heads): outputs and targets are
        dicts by their names."""
        self.heads = self.outputs.names if self.outputs is not None else ()
        used = {m.name: m.arguments for m in train.metrics}
        self.metric_arguments = used
        self.split_metrics = ["loss"] + [m for m in used
                                         if m != "loss" and METRICS.get(m).scope == "split"]
        self.training_metrics = [m for m in used if METRICS.get(m).scope == "training"]
        self.classes = info.classes if info is not None else None
        if self.outputs is not None:
            self.split_metrics = self.outputs.split_metrics
        self.train_mode_differs = uses_train_mode(model_layers(program.model))
        self.early_stop = train.early_stop
        # A model whose first layers run features-first gets full-batch data transposed
        # once per call (see `_laid_out`); a minibatch is transposed by the model.
        self.transposed = takes_transposed_input(self.module) and self.schedule.batch is None

    def traced_state(self) -> dict[str, np.ndarray]:
        """The program's traced values as the state holds them (float32 arrays by name):
        in the state, so that the members of a sweep may differ in them."""
        values = traced_values(self.program)
        return {name: np.asarray(values.get(name, []), np.float32) for name in TRACED_NAMES}

    def structure_key(self) -> tuple:
        """Everything the traced programs of this trainer depend on: the model and the
        train settings (optimizer hyperparameters included: they are constants of the
        program) but the seed (an argument of `init`'s program), the traced fields (whose
        values every program reads from the state, see `traced_state`) and the model's
        name; the data's shapes and task; the train rows; the backend (which picks the
        layout, see `build_module`). Equal keys trace to the same programs."""
        if not hasattr(self, "_structure_key"):
            program = self.program
            self._structure_key = (
                repr(untraced(program.model.model_copy(update={"name": ""}))),
                repr(untraced(program.train.model_copy(update={"seed": 0}))),
                # what the loss and metrics may read of the data (binary, class count)
                repr(program.data.info.model_dump(include={"features", "target", "classes",
                                                           "target_dim", "outputs"}))
                if program.data is not None else None,
                token_inputs(program),  # which inputs' padding the model masks
                self.n_train, self.inject, jax.default_backend(), self.prune)
        return self._structure_key

    # ---- pieces

    def module_init(self, jit: bool = False):
        """`(key, x) -> variables` of the flax module; with `jit`, one compiled program
        (much quicker than flax's op-by-op initialisation in a fresh process)."""
        def init(key, x):
            return self.module.init(key, x, train=False)

        if not jit:
            return init
        return shared_jit(self, "module_init", lambda: jax.jit(init))

    def init(self, seed: int, x_example: jax.Array, jit: bool = False,
             module_init=None) -> State:
        """A fresh state for `seed`. With `jit`, the whole state is made by one compiled
        program (parameters, optimizer state, keys), which compiles quicker than the dozen
        small programs that building it op by op takes. Members of a sweep pass one shared
        `module_init`, so that their parameters start exactly as the single runs' do."""
        if module_init is None and jit and 0 <= seed < 2**31:
            # The key made inside the program from an int32 seed: the key that
            # PRNGKey(seed) makes outside, without its two small programs to compile.
            fresh = shared_jit(self, "fresh_state", lambda: jax.jit(
                lambda seed, x, traced: self._fresh_state(
                    jax.random.PRNGKey(seed), take_rows(x, slice(0, 1)), self.module_init(),
                    traced)))
            return fresh(np.int32(seed), x_example, self.traced_state())
        key = jax.random.PRNGKey(seed)  # outside jit: any Python int seed
        return self._fresh_state(key, take_rows(x_example, slice(0, 1)),
                                 module_init or self.module_init(jit), self.traced_state())

    def _fresh_state(self, key, x_example, module_init, traced) -> State:
        init_key, dropout_key, shuffle_key = jax.random.split(key, 3)
        variables = module_init(init_key, x_example)
        params = variables["params"]
        model_state = {k: v for k, v in variables.items() if k != "params"}
        state: State = {
            "params": params, "model_state": model_state,
            "opt_state": optax_code(self.tx.init, params),
            "step": jnp.zeros((), jnp.int32), "dropout_key": dropout_key,
            "shuffle_key": shuffle_key,
            **{name: jnp.asarray(values) for name, values in traced.items()},
        }
        if self.schedule.batch is not None:
            # The current epoch's order of train rows, drawn at each epoch's first step
            # (`_batch`); until then a placeholder of its shape, which compiles quicker.
            state["order"] = jnp.zeros(self.n_train, jnp.int32)
        if self.prune is not None:
            state["pruned"] = jnp.bool_(False)
        if self.early_stop is not None:
            state["stop"] = {"best": jnp.array(jnp.inf, jnp.float32), "wait": jnp.int32(0),
                             "stopped": jnp.bool_(False)}
            if self.early_stop.restore_best:
                # The model of the best evaluation so far, with its own record of the
                # watched value (a state saved without it starts a fresh record).
                state["best"] = {"value": jnp.array(jnp.inf, jnp.float32),
                                 "step": jnp.zeros((), jnp.int32), "params": params,
                                 "model_state": model_state}
        return state

    @staticmethod
    def traced(state: State) -> Traced:
        """The state's traced values, which the model and the loss read."""
        return {name: state[name] for name in TRACED_NAMES}

    def apply(self, params, model_state, x, train: bool = False, rng=None,
              transposed: bool = False, traced: Traced | None = None):
        """The model's outputs (and, in training, its updated model state). `x` is (rows,
        features), or its transpose with `transposed` (inside a run, see `_laid_out`);
        `traced`: the state's traced values, or None for the program's own."""
        variables = {"params": params, **model_state}
        kwargs = {"train": train, "transposed": transposed, "traced": traced}
        if train and model_state:
            return self.module.apply(variables, x, **kwargs, rngs={"dropout": rng},
                                     mutable=list(model_state))
        out = self.module.apply(variables, x, **kwargs,
                                rngs={"dropout": rng} if rng is not None else None)
        return out, model_state

    def objective(self, params, model_state, x, y, train: bool, rng=None,
                  traced: Traced | None = None, transposed: bool = False):
        out, new_model_state = self.apply(params, model_state, x, train, rng, transposed,
                                          traced)
        terms = bind_tree(self.terms, traced)
        if self.outputs is not None:
            loss = self.outputs.loss(terms, out, y, params)
        else:
            loss = sum(term.weight * term.loss.value(out, y, params) for term in terms)
        return loss, (out, new_model_state)

    def split_inputs(self, out, y, loss) -> SplitInputs:
        return SplitInputs(out=out, y=y, pred=self.data_loss.predict(out), loss=loss,
                           data_loss=self.data_loss, classes=self.classes)

    def metrics_of(self, out, y, loss) -> dict[str, jax.Array]:
        if self.outputs is not None:
            return self.outputs.metrics_of(out, y, loss)
        inputs = self.split_inputs(out, y, loss)
        return {name: METRICS.get(name).compute(inputs, self.metric_arguments.get(name, ()))
                for name in self.split_metrics}

    def confusion_matrix(self, state: State, x, y) -> jax.Array:
        """Counts of rows by target class (rows) and predicted class (columns)."""
        out, _ = self.apply(state["params"], state["model_state"], x,
                            traced=self.traced(state))
        return METRICS.get("confusion_matrix").fn(self.split_inputs(out, y, None))

    def evaluate(self, state: State, x, y, transposed: bool = False) -> dict[str, jax.Array]:
        loss, (out, _) = self.objective(state["params"], state["model_state"], x, y, False,
                                        traced=self.traced(state), transposed=transposed)
        return self.metrics_of(out, y, loss)

    def _laid_out(self, data: Data) -> Data:
        """The data as the run's steps read them: transposed for a features-first model
        trained full-batch. Done once per jitted call, outside its loops: XLA does not
        hoist a 4 MB transpose out of the loop by itself, and the kernel gradient of a
        narrow first layer (x^T g) is several times quicker from transposed data."""
        if not self.transposed:
            return data
        return {split: (x.T, y) for split, (x, y) in data.items()}

    def _epoch_order(self, shuffle_key, epoch, n: int):
        return jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), n)

    def _batch(self, state: State, data: Data):
        """The step's rows, and the state with this epoch's shuffled order: the order is
        drawn once per epoch (at its first step) and carried, not redrawn every step."""
        x, y = data["train"]
        schedule = self.schedule
        if schedule.batch is None:
            return state, x, y
        step = state["step"]
        epoch = step // schedule.steps_per_epoch
        index = step % schedule.steps_per_epoch
        order = jax.lax.cond(
            index == 0, lambda: self._epoch_order(state["shuffle_key"], epoch, n_rows(x)),
            lambda: state["order"])
        rows = jax.lax.dynamic_slice_in_dim(order, index * schedule.batch, schedule.batch)
        return {**state, "order": order}, take_rows(x, rows), take_rows(y, rows)

    def step(self, state: State, data: Data):
        """One gradient step; returns the new state and what the step saw."""
        state, x, y = self._batch(state, data)
        rng = jax.random.fold_in(state["dropout_key"], state["step"])
        grad_fn = jax.value_and_grad(self.objective, has_aux=True)
        traced = self.traced(state)
        (loss, (out, model_state)), grads = grad_fn(
            state["params"], state["model_state"], x, y, True, rng, traced, self.transposed)
        extra = {}
        if isinstance(self.tx, optax.GradientTransformationExtraArgs):
            # What lbfgs, polyak_sgd and line searches ask for; other optimizers ignore it.
            extra = {"value": loss, "grad": grads, "value_fn": lambda p: self.objective(
                p, state["model_state"], x, y, True, rng, traced, self.transposed)[0]}
        updates, opt_state = optax_code(self.tx.update, grads, state["opt_state"],
                                        state["params"], **extra)
        new_state = {**state, "params": optax.apply_updates(state["params"], updates),
                     "model_state": model_state, "opt_state": opt_state,
                     "step": state["step"] + 1}
        return new_state, {"loss": loss, "out": out, "y": y, "grads": grads}

    def _halted(self, state: State):
        """Whether the state no longer trains (early stopping fired, or pruned); None when
        neither can happen."""
        flags = ([state["stop"]["stopped"]] if self.early_stop is not None else []) + \
            ([state["pruned"]] if self.prune is not None else [])
        return None if not flags else functools.reduce(jnp.logical_or, flags)

    def _guarded_step(self, state: State, data: Data):
        """A step that does nothing once early stopping has fired (or pruning)."""
        halted = self._halted(state)
        if halted is None:
            return self.step(state, data)[0]
        return jax.lax.cond(halted, lambda s: s, lambda s: self.step(s, data)[0], state)

    def _rung(self, state: State, row: dict) -> jax.Array:
        """The `pruned` flag after this evaluation: at a rung (a step > 0 that `every`
        divides) the members still training rank by the metric (ties by their place, a
        NaN last) and those past the best `keep` share of them are cut (at least one goes
        on). Runs vmapped: the members' values are gathered over axis MEMBERS."""
        prune = self.prune
        value = row[prune.metric] * (-1 if prune.higher else 1)
        value = jnp.where(jnp.isfinite(value), value, jnp.inf).astype(jnp.float32)
        alive = ~state["pruned"]
        values = jax.lax.all_gather(value, MEMBERS)
        alives = jax.lax.all_gather(alive, MEMBERS)
        place = jax.lax.axis_index(MEMBERS)
        others = jnp.arange(values.shape[0])
        ahead = alives & ((values < value) | ((values == value) & (others < place)))
        share = jnp.float32(prune.keep) * alives.sum().astype(jnp.float32) - jnp.float32(1e-6)
        kept = jnp.maximum(1, jnp.ceil(share).astype(jnp.int32))
        step = state["step"]
        at_rung = (step > 0) & (step % prune.every == 0)
        return state["pruned"] | (at_rung & alive & (ahead.sum() >= kept))

    def _row(self, state: State, data: Data, seen: dict | None) -> dict[str, jax.Array]:
        """The metrics of the current params. `seen` is the next step's forward pass on the
        full train set, reused for the train metrics when training mode changes nothing."""
        row = {}
        for split, (x, y) in data.items():
            if split == "train" and seen is not None and self.schedule.batch is None \
                    and not self.train_mode_differs:
                values = self.metrics_of(seen["out"], seen["y"], seen["loss"])
            else:
                values = self.evaluate(state, x, y, self.transposed)
            row.update({f"{split}.{k}": v for k, v in values.items()})
        if self.training_metrics:
            if seen is None:
                x, y = data["train"]
                seen = {"grads": jax.grad(lambda p: self.objective(
                    p, state["model_state"], x, y, False, traced=self.traced(state),
                    transposed=self.transposed)[0])(state["params"])}
            inputs = TrainingInputs(params=state["params"], grads=seen["grads"])
            row.update({m: METRICS.get(m).fn(inputs) for m in self.training_metrics})
        return row

    def _watched_value(self, row: dict) -> jax.Array:
        """The watched metric, signed so that lower is better."""
        return row[self.early_stop.metric] * (1 if self.early_stop.mode == "min" else -1)

    def _watch(self, state: State, row: dict) -> State:
        """Counts evaluations without improvement and stops after `patience` of them;
        with `restore_best`, keeps the model of the best one."""
        value = self._watched_value(row)
        s = state["stop"]
        improved = value < s["best"]
        wait = jnp.where(improved, 0, s["wait"] + 1)
        stopped = s["stopped"] | (wait >= self.early_stop.patience)
        new = {"best": jnp.where(improved, value, s["best"]), "wait": wait,
               "stopped": stopped}
        return self._keep_best({**state, "stop": new}, value, live=~s["stopped"])

    def _keep_best(self, state: State, value, live) -> State:
        """The state with its best copy replaced by the current model when `value` (the
        watched metric of the current model, lower is better) beats the best one's. An
        evaluation after the stop (not `live`) repeats the stopped model: it never counts."""
        if "best" not in state:
            return state
        best = state["best"]
        improved = (value < best["value"]) & live
        current = {"value": value, "step": state["step"], "params": state["params"],
                   "model_state": state["model_state"]}
        return {**state, "best": jax.tree.map(lambda new, old: jnp.where(improved, new, old),
                                              current, best)}

    def _block(self, state: State, data: Data, steps: int):
        """One evaluation, then `steps` steps (none once early stopping fires)."""
        stepped, seen = self.step(state, data)
        row = self._row(state, data, seen)
        if self.early_stop is not None:
            row["_stopped"] = state["stop"]["stopped"]  # rows after the stop are dropped
            watched = self._watch(state, row)
            moved = {**stepped, **{k: watched[k] for k in ("stop", "best") if k in watched}}
            stepped = jax.tree.map(lambda kept, moved: jnp.where(
                watched["stop"]["stopped"], kept, moved), watched, moved)
        if self.prune is not None:
            # the rung's row is the cut member's last: the rows after it are dropped
            row["_stopped"] = row.get("_stopped", False) | state["pruned"]
            cut = self._rung(state, row)
            kept = {**state, **{k: stepped[k] for k in ("stop", "best") if k in stepped}}
            stepped = jax.tree.map(lambda kept, moved: jnp.where(cut, kept, moved),
                                   kept, stepped)
            stepped = {**stepped, "pruned": cut}
        if self.schedule.eval_every > 1:  # with a row every step there is nothing more
            stepped = jax.lax.fori_loop(0, steps - 1,
                                        lambda _, s: self._guarded_step(s, data), stepped)
        return stepped, row

    # ---- whole runs

    def run_blocks(self, state: State, data: Data, counts):
        """One block per entry of `counts` (its number of steps), as one scan: the state
        and the stacked rows. Full and left-over blocks share the compiled body."""
        return self._scan_blocks(state, self._laid_out(data), counts)

    def finish(self, state: State, data: Data):
        """The final evaluation, as a stack of one row."""
        return self._final_row(state, self._laid_out(data))

    def run_all(self, state: State, data: Data, counts):
        """The whole run as one program: every block, then the final evaluation."""
        data = self._laid_out(data)
        state, rows = self._scan_blocks(state, data, counts)
        state, last = self._final_row(state, data)
        return state, jax.tree.map(lambda a, b: jnp.concatenate([a, b]), rows, last)

    def _scan_blocks(self, state: State, data: Data, counts):
        return jax.lax.scan(lambda s, steps: self._block(s, data, steps), state, counts)

    def _final_row(self, state: State, data: Data):
        row = self._row(state, data, None)
        if self.prune is not None:
            row["_stopped"] = state["pruned"]
        if self.early_stop is not None:
            row["_stopped"] = row.get("_stopped", False) | state["stop"]["stopped"]
            # the last evaluation may be the best one (no stopping is decided after it)
            state = self._keep_best(state, self._watched_value(row),
                                    live=~state["stop"]["stopped"])
        return state, jax.tree.map(lambda value: value[None], row)

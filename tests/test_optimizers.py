"""Every optax optimizer and schedule of the catalogue trains a tiny model, and
optimizer calls are validated at check time.

The catalogue is derived from optax's source, so the tables below are checked against it:
an optax release that adds an optimizer or schedule fails `test_every_*_has_a_row` until
it gets a row here (with arguments that make a 1-D linear fit fall in a few steps).
"""

from __future__ import annotations

import numpy as np
import pytest

import mlspec
from mlspec.catalog.optimizers import names, optax_catalogue
from mlspec.syntax.errors import SpecError

SPEC = """\
model tiny {{
    dense(1)
}}
data {{
    train = linear(n=64, seed=0)
}}
train {{
    loss = mse
    optimizer = {optimizer}
    steps = {steps}{extra}
}}
"""
OPTIMIZER_LINE = next(i for i, line in enumerate(SPEC.splitlines(), 1)
                      if "optimizer =" in line)


def spec_text(optimizer: str, steps: int = 30, extra: str = "") -> str:
    """The tiny spec; `extra` adds `;`-separated settings to the train section."""
    return SPEC.format(optimizer=optimizer, steps=steps,
                       extra="".join(f"\n    {s.strip()}" for s in extra.split(";")
                                     if s.strip()))


def spec(optimizer: str, steps: int = 30, extra: str = ""):
    return mlspec.parse(spec_text(optimizer, steps, extra))


def train_losses(optimizer: str, steps: int = 30, extra: str = "") -> np.ndarray:
    history = mlspec.run(spec(optimizer, steps, extra)).history
    assert list(history["step"]) == list(range(steps + 1))
    return history["train.loss"].to_numpy()


def assert_falls(losses: np.ndarray) -> None:
    assert np.isfinite(losses).all(), losses
    assert losses[-1] < losses[0], (losses[0], losses[-1])


# ---- every optimizer trains ----------------------------------------------------------

# The arguments each optimizer is called with in the tiny spec (learning rates picked
# so that 30 full-batch steps of a 1-D linear fit clearly reduce the loss).
OPTIMIZERS = {
    "adabelief": "learning_rate=0.1",
    "adadelta": "learning_rate=1.0",
    "adafactor": "learning_rate=1.0",
    "adagrad": "learning_rate=1.0",
    "adam": "learning_rate=0.1",
    "adamax": "learning_rate=0.1",
    "adamaxw": "learning_rate=0.1",
    "adamw": "learning_rate=0.1",
    "adan": "learning_rate=0.1",
    "amsgrad": "learning_rate=0.1",
    "fromage": "learning_rate=0.1",
    "lamb": "learning_rate=0.1",
    "lars": "learning_rate=0.01",
    "lbfgs": "learning_rate=1.0, memory_size=3",
    "lion": "learning_rate=0.1",
    "nadam": "learning_rate=0.1",
    "nadamw": "learning_rate=0.1",
    "noisy_sgd": "learning_rate=0.1, key=0",
    "novograd": "learning_rate=0.1",
    "optimistic_adam": "learning_rate=0.1",
    "optimistic_adam_v2": "learning_rate=0.1",
    "optimistic_gradient_descent": "learning_rate=0.1",
    "polyak_sgd": "max_learning_rate=0.5",
    "radam": "learning_rate=0.1",
    "rmsprop": "learning_rate=0.1",
    "rprop": "learning_rate=0.1",
    "sgd": "learning_rate=0.1",
    "sign_sgd": "learning_rate=0.1",
    "signum": "learning_rate=0.1",
    "sm3": "learning_rate=1.0",
    "yogi": "learning_rate=0.1",
}

# Optimizers whose update needs the loss (`value`, `grad`, `value_fn` extra arguments of
# optax's GradientTransformationExtraArgs); the trainer must pass them.
NEEDS_LOSS = ["lbfgs", "polyak_sgd"]

# Further calls: variants worth running besides the table's one call per optimizer.
VARIANTS = [
    pytest.param("sgd(0.1, 0.9)", id="sgd-positional-momentum"),
    pytest.param("sgd(learning_rate=0.05, momentum=0.9, nesterov=true)", id="sgd-nesterov"),
    pytest.param("adafactor()", id="adafactor-default-lr"),
    pytest.param("adam(learning_rate=0.1, nesterov=true)", id="adam-nesterov"),
    pytest.param("rmsprop(learning_rate=0.1, centered=true, momentum=0.5)",
                 id="rmsprop-centered"),
    pytest.param("adadelta(learning_rate=1.0)", id="adadelta-paper-lr"),
]


def _optimizer_params():
    params = []
    for name in names("optimizer"):
        marks = pytest.mark.filterwarnings(f"ignore:`{name}` is deprecated")
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def test_every_optimizer_has_a_row():
    catalogue = set(names("optimizer"))
    assert catalogue - set(OPTIMIZERS) == set(), "add these optimizers to OPTIMIZERS"
    assert set(OPTIMIZERS) - catalogue == set(), "these are no longer optax optimizers"


@pytest.mark.parametrize("name", _optimizer_params())
def test_optimizer_trains(name):
    optimizer = f"{name}({OPTIMIZERS[name]})"
    assert mlspec.check(spec(optimizer)).train.optimizer.name == name
    losses = train_losses(optimizer)
    assert_falls(losses)
    if name in NEEDS_LOSS:
        # lbfgs's line search and polyak's step size use the loss value (lbfgs also a
        # value_fn); with them this convex least-squares fit reaches its optimum.
        np.testing.assert_allclose(losses[-1], _least_squares_mse(), rtol=1e-4)


@pytest.mark.parametrize("optimizer", VARIANTS)
def test_optimizer_variant_trains(optimizer):
    assert_falls(train_losses(optimizer))


def _least_squares_mse() -> float:
    """The smallest train MSE a dense(1) can reach on the tiny spec's data (NumPy OLS)."""
    from mlspec.catalog.sources import Linear

    x, y = Linear(n=64, seed=0).load(None)
    design = np.hstack([np.asarray(x, np.float64), np.ones((len(x), 1))])
    coef, *_ = np.linalg.lstsq(design, np.asarray(y, np.float64), rcond=None)
    return float(np.mean((design @ coef - y) ** 2))


@pytest.mark.parametrize("name", NEEDS_LOSS)
def test_optimizers_using_the_loss_behind_clipping(name):
    """clip_by_global_norm chains a transformation in front; the loss must still reach
    lbfgs and polyak_sgd through the chain."""
    losses = train_losses(f"{name}({OPTIMIZERS[name]})", 30, "clip_by_global_norm = 1.0")
    assert_falls(losses)
    np.testing.assert_allclose(losses[-1], _least_squares_mse(), rtol=1e-4)


# ---- learning-rate schedules ---------------------------------------------------------

SCHEDULES = {
    "constant_schedule": "constant_schedule(0.1)",
    "cosine_decay_schedule": "cosine_decay_schedule(init_value=0.1, decay_steps=20)",
    "cosine_onecycle_schedule": "cosine_onecycle_schedule(transition_steps=20, "
                                "peak_value=0.2)",
    "exponential_decay": "exponential_decay(init_value=0.1, transition_steps=5, "
                         "decay_rate=0.9, staircase=true)",
    "join_schedules": "join_schedules(schedules=[constant_schedule(0.1), "
                      "constant_schedule(0.05)], boundaries=[10])",
    "linear_onecycle_schedule": "linear_onecycle_schedule(transition_steps=20, "
                                "peak_value=0.2)",
    "linear_schedule": "linear_schedule(init_value=0.1, end_value=0.01, transition_steps=20)",
    "piecewise_constant_schedule": "piecewise_constant_schedule(init_value=0.1, "
                                   "boundaries_and_scales=[[10, 0.5]])",
    "piecewise_interpolate_schedule": 'piecewise_interpolate_schedule("linear", 0.1, '
                                      "boundaries_and_scales=[[10, 0.5], [15, 0.5]])",
    "polynomial_schedule": "polynomial_schedule(init_value=0.1, end_value=0.01, power=2, "
                           "transition_steps=20)",
    "sgdr_schedule": 'sgdr_schedule(cosine_kwargs=[[["init_value", 0.01], '
                     '["peak_value", 0.1], ["warmup_steps", 2], ["decay_steps", 10]]])',
    "warmup_constant_schedule": "warmup_constant_schedule(init_value=0.01, peak_value=0.1, "
                                "warmup_steps=5)",
    "warmup_cosine_decay_schedule": "warmup_cosine_decay_schedule(init_value=0.01, "
                                    "peak_value=0.1, warmup_steps=5, decay_steps=20)",
    "warmup_exponential_decay_schedule": "warmup_exponential_decay_schedule("
                                         "init_value=0.01, peak_value=0.1, warmup_steps=5, "
                                         "transition_steps=5, decay_rate=0.9)",
}

# Schedules whose arguments the spec language cannot express (found by these tests).


def _schedule_params():
    params = []
    for name in names("schedule"):
        params.append(pytest.param(name, id=name))
    return params


def test_every_schedule_has_a_row():
    catalogue = set(names("schedule"))
    assert catalogue - set(SCHEDULES) == set(), "add these schedules to SCHEDULES"
    assert set(SCHEDULES) - catalogue == set(), "these are no longer optax schedules"


@pytest.mark.parametrize("name", _schedule_params())
def test_schedule_as_learning_rate(name):
    optimizer = f"sgd(learning_rate={SCHEDULES[name]})"
    lr = mlspec.check(spec(optimizer, 20)).train.optimizer.arguments["learning_rate"]
    assert lr.name == name
    assert_falls(train_losses(optimizer, 20))


def test_constant_schedule_equals_a_number():
    np.testing.assert_allclose(train_losses("sgd(learning_rate=constant_schedule(0.1))", 8),
                               train_losses("sgd(learning_rate=0.1)", 8), rtol=1e-6)


def test_piecewise_pairs_reach_optax_as_step_to_scale():
    """[[5, 0.0]] means {5: 0.0}: the rate drops to zero from step 5, so the loss stops
    changing after 5 updates (a swapped key and value would not do that)."""
    program = mlspec.check(spec("sgd(learning_rate=piecewise_constant_schedule("
                                "init_value=0.1, boundaries_and_scales=[[5, 0.0]]))", 10))
    schedule = program.train.optimizer.arguments["learning_rate"]
    assert schedule.arguments["boundaries_and_scales"] == {5: 0.0}
    losses = train_losses("sgd(learning_rate=piecewise_constant_schedule(init_value=0.1, "
                          "boundaries_and_scales=[[5, 0.0]]))", 10)
    assert losses[5] < losses[4] < losses[0]
    np.testing.assert_array_equal(losses[5:], losses[5])


# ---- validation at check time --------------------------------------------------------

# (id, optimizer setting, a piece of the expected message)
ERRORS = [
    ("unknown-optimizer", "adma(learning_rate=0.1)",
     "unknown optimizer 'adma'; did you mean 'adam'?"),
    ("unknown-optimizer-case", "Adam(learning_rate=0.1)",
     "unknown optimizer 'Adam'; did you mean 'adam'?"),
    ("unknown-argument", "sgd(learning_rat=0.1)",
     "optimizer 'sgd' has no argument 'learning_rat'; did you mean 'learning_rate'?"),
    ("unknown-argument-listed", "adam(learning_rate=0.1, beta1=0.9)",
     "optimizer 'adam' has no argument 'beta1'; expected one of 'b1', 'b2'"),
    ("negative-lr", "adam(learning_rate=-0.001)",
     "argument 'learning_rate' of optimizer 'adam' should be greater than 0 (got a number "
     "-0.001)"),
    ("zero-lr", "sgd(learning_rate=0)", "should be greater than 0 (got an integer 0)"),
    ("negative-optional-lr", "adadelta(learning_rate=-1)", "should be greater than 0"),
    ("bool-given-number", "sgd(learning_rate=0.1, nesterov=1)",
     "argument 'nesterov' of optimizer 'sgd' should be a valid boolean (got an integer 1)"),
    ("bool-given-string", 'sgd(learning_rate=0.1, nesterov="yes")',
     "should be a valid boolean (got a string 'yes')"),
    ("number-given-bool", "adam(learning_rate=0.1, b1=true)",
     "argument 'b1' of optimizer 'adam' should be a number (got a boolean true)"),
    ("int-given-float", "lbfgs(memory_size=2.5)",
     "argument 'memory_size' of optimizer 'lbfgs' should be a valid integer (got a number 2.5)"),
    ("lr-given-string", 'adam(learning_rate="fast")',
     "should be a number or a schedule call (got a string 'fast')"),
    ("lr-given-list", "adam(learning_rate=[0.1])",
     "should be a number or a schedule call (got a list [0.1])"),
    ("missing-lr", "adam()", "optimizer 'adam' needs argument 'learning_rate'"),
    ("bare-name", "sgd", "optimizer 'sgd' needs argument 'learning_rate'"),
    ("given-twice", "sgd(0.1, learning_rate=0.2)",
     "argument 'learning_rate' of optimizer 'sgd' is given twice"),
    ("too-many-positional", "sgd(0.1, 0.9, false, 1, 2)",
     "optimizer 'sgd' takes at most 4 positional arguments"),
    ("not-a-call", "0.1", "optimizer should be an optax optimizer call"),
    ("optimizer-as-schedule", "sgd(learning_rate=adam(learning_rate=0.1))",
     "unknown schedule 'adam'"),
    ("schedule-as-optimizer", "constant_schedule(0.1)", "unknown optimizer 'constant_schedule'"),
    ("schedule-missing-arg", "sgd(learning_rate=constant_schedule)",
     "schedule 'constant_schedule' needs argument 'value'"),
    ("schedule-int-given-float",
     "sgd(learning_rate=linear_schedule(init_value=0.1, end_value=0.0, transition_steps=2.5))",
     "argument 'transition_steps' of schedule 'linear_schedule' should be a valid integer"),
    ("schedule-bool-given-number",
     "sgd(learning_rate=exponential_decay(init_value=0.1, transition_steps=5, "
     "decay_rate=0.9, staircase=1))",
     "argument 'staircase' of schedule 'exponential_decay' should be a valid boolean"),
    ("pairs-not-pairs", "sgd(learning_rate=piecewise_constant_schedule(init_value=0.1, "
                        "boundaries_and_scales=[[10, 0.5, 1]]))",
     "should be a list of [key, value] pairs"),
]


@pytest.mark.parametrize("optimizer, message", [pytest.param(*row[1:], id=row[0])
                                                for row in ERRORS])
def test_check_error(optimizer, message):
    with pytest.raises(mlspec.SpecError) as caught:
        mlspec.check(spec(optimizer))
    diagnostics = caught.value.diagnostics
    assert len(diagnostics) == 1, str(caught.value)
    assert message in diagnostics[0].message
    assert diagnostics[0].span is not None and diagnostics[0].span.line == OPTIMIZER_LINE
    assert message in str(caught.value)  # the rendered error carries it too


def test_unknown_optimizer_caret_is_under_the_name():
    with pytest.raises(mlspec.SpecError) as caught:
        mlspec.check(spec("adma(learning_rate=0.1)"))
    span = caught.value.diagnostics[0].span
    line = spec_text("adma(learning_rate=0.1)").splitlines()[OPTIMIZER_LINE - 1]
    assert line[span.column - 1:span.end_column - 1] == "adma"


def _learning_rate_params():
    catalogue = optax_catalogue()
    return [name for name in names("optimizer")
            if catalogue[name].argument("learning_rate") is not None]


@pytest.mark.parametrize("name", _learning_rate_params())
def test_negative_learning_rate_is_refused(name):
    others = ", ".join(a for a in OPTIMIZERS[name].split(", ")
                       if not a.startswith("learning_rate"))
    call = f"{name}(learning_rate=-0.1{', ' + others if others else ''})"
    with pytest.raises(mlspec.SpecError, match="should be greater than 0"):
        mlspec.check(spec(call))


def _bool_arguments():
    catalogue = optax_catalogue()
    return [pytest.param(name, arg.name, id=f"{name}.{arg.name}")
            for name in names("optimizer") for arg in catalogue[name].arguments
            if arg.annotation == "bool"]


@pytest.mark.parametrize("name, argument", _bool_arguments())
def test_bool_argument(name, argument):
    """Every bool argument of every optimizer takes true/false and refuses numbers."""
    base = OPTIMIZERS[name]
    sep = ", " if base else ""
    mlspec.check(spec(f"{name}({base}{sep}{argument}=true)"))
    mlspec.check(spec(f"{name}({base}{sep}{argument}=false)"))
    for wrong in ("1", "0.0"):
        with pytest.raises(mlspec.SpecError, match=(
                f"argument '{argument}' of optimizer '{name}' should be a valid boolean")):
            mlspec.check(spec(f"{name}({base}{sep}{argument}={wrong})"))


def test_catalogue_matches_optax():
    """Names resolve to real optax callables, and required arguments are required there."""
    import inspect

    import optax

    for name, fn in optax_catalogue().items():
        target = getattr(optax, name)
        signature = inspect.signature(target)
        for arg in fn.arguments:
            parameter = signature.parameters[arg.name]
            assert arg.required == (parameter.default is inspect.Parameter.empty), (name, arg)


def test_adadelta_without_a_learning_rate_is_refused():
    """optax's adadelta makes learning_rate optional, but without one it applies the update
    without the descent's sign flip and training climbs the loss: refused at check."""
    text = ("model m { dense(1) }\ndata { train = hyperplane(n=50, dim=3) }\n"
            "train {\n    loss = sigmoid_binary_cross_entropy\n"
            "    optimizer = adadelta(rho=0.9)\n    steps = 2\n}\n")
    with pytest.raises(SpecError) as info:
        mlspec.resolve(mlspec.parse(text))
    message = info.value.render()
    assert "needs argument 'learning_rate'" in message and ":5:" in message


# ---- every argument's type is read from its annotation -------------------------------


def test_every_optax_argument_has_a_checked_type():
    """Each annotation optax writes is read as a type (`optimizers.argument_type`): a new
    kind of annotation fails here until it gets an entry, rather than passing unchecked."""
    from typing import Any

    from mlspec.catalog.optimizers import argument_type

    unread = sorted({a.annotation for fn in optax_catalogue().values() for a in fn.arguments
                     if argument_type(a) is Any})
    assert unread == [], "give these annotations a type in optimizers._TYPES"


@pytest.mark.parametrize("optimizer, message", [
    ("adam(learning_rate=0.1, mu_dtype=bfloat61)",
     "undefined name 'bfloat61'; did you mean 'bfloat16'?"),
    ("sgd(learning_rate=0.1, accumulator_dtype=float64)",
     "undefined name 'float64'; did you mean 'float16'?"),
    ('adam(learning_rate=0.1, mu_dtype="int8")',
     "argument 'mu_dtype' of optimizer 'adam' should be 'bfloat16', 'float16' or 'float32'"),
    ("adamw(learning_rate=0.1, mask=true)",
     "argument 'mask' of optimizer 'adamw' cannot be set from a spec"),
    ("sgd(learning_rate=join_schedules(schedules=[0.1], boundaries=[5]))",
     "argument 'schedules' of schedule 'join_schedules' should be a schedule call"),
    ("sgd(learning_rate=join_schedules(schedules=[constant_schedule(0.1)], boundaries=[0.5]))",
     "argument 'boundaries' of schedule 'join_schedules' should be a valid integer"),
    ("sgd(learning_rate=lr)", "undefined name 'lr'"),
    ("sgd(learning_rate=adam)", "'adam' is an optimizer, which cannot stand here"),
])
def test_an_optax_value_is_checked_at_check_time(optimizer, message):
    with pytest.raises(SpecError) as caught:
        mlspec.check(spec(optimizer))
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.message.startswith(message), diagnostic.message
    assert diagnostic.span.line == OPTIMIZER_LINE


def test_a_dtype_trains_as_optax_keeps_it():
    losses = train_losses("adam(learning_rate=0.1, mu_dtype=bfloat16)", 10)
    assert_falls(losses)

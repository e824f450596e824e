from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.mlspec"))


def pytest_configure(config):
    """Hermetic caches: the optax catalogue and JAX's compilation cache, matplotlib's
    configuration and hypothesis's examples go to a folder of the system's temporary
    directory (subprocesses inherit it), never to the user's ~/.cache or ~/.config nor
    into the checkout. It outlives the session, so that a second run of the tests finds
    the programs the first compiled (MLSPEC_TEST_CACHE names another folder)."""
    folder = os.environ.get("MLSPEC_TEST_CACHE") or os.path.join(
        tempfile.gettempdir(), f"mlspec-test-cache-{os.getuid()}")
    os.makedirs(folder, exist_ok=True)
    os.environ["XDG_CACHE_HOME"] = folder
    os.environ["MPLCONFIGDIR"] = os.path.join(folder, "matplotlib")
    os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = os.path.join(folder, "hypothesis")
    _strict_promotion()


def _strict_promotion() -> None:
    """jax's strict dtype promotion and rank promotion as errors (STYLE.md, after equinox
    and flax): an implicit float64, int-float mix or broadcast of unequal ranks in mlspec
    code fails the test that meets it, instead of silently changing a number. The
    processes that tests start get the same settings (JAX_NUMPY_*)."""
    os.environ["JAX_NUMPY_DTYPE_PROMOTION"] = "strict"
    os.environ["JAX_NUMPY_RANK_PROMOTION"] = "raise"
    import jax

    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")


def iris_net(train: str, width: int = 16, data: str = "") -> str:
    """A small classifier of scikit-learn's iris split in place, with `train` settings
    (one per line) after its loss and optimizer defaults: the runs of many tests."""
    settings = "\n".join(f"    {line.strip()}" for line in train.strip().splitlines())
    extra = "".join(f"    {line.strip()}\n" for line in data.strip().splitlines())
    return (f"model net {{\n    dense({width}) -> relu\n    dense(classes)\n}}\n"
            f"data {{\n    source = iris\n    valid  = 0.3\n{extra}    standardize = true\n}}\n"
            f"train {{\n    loss = softmax_cross_entropy\n{settings}\n"
            "    metrics = [accuracy]\n}\n")


@pytest.fixture
def write_spec(tmp_path):
    """Writes spec text to a file and returns its path."""

    def write(text: str, name: str = "spec.mlspec") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write

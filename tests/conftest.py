from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.mlspec"))


@pytest.fixture
def write_spec(tmp_path):
    """Writes spec text to a file and returns its path."""

    def write(text: str, name: str = "spec.mlspec") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write

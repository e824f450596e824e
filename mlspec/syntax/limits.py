"""What a spec may hold, shared by the text reader, the JSON reader and the editor."""

from __future__ import annotations

import re

MAX_SPEC_BYTES = 2**20
"""A spec file's size limit; a bigger one is refused before it is read."""
MAX_DEPTH = 64
"""How deep values and blocks may nest (a deeper spec is refused at its place)."""
MAX_INT = 2**63 - 1
"""The largest integer a spec may write (a seed, a step count)."""
SPEC_SUFFIXES = (".mlspec", ".json")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

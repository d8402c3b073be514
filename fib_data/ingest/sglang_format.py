"""What an SGLang batch line holds, as both readers of it (``sglang_bytes``, ``sglang_text``)
hand it to ``sglang.py``: one ``BatchLines`` of numpy columns per chunk.

The format facts themselves (field keys, stamp, rank tags, what a cut line looks like) live here
so that the byte path and the polars path cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# "#token:" cannot match inside "#new-token:"/"#cached-token:" (the "#" comes first there).
FIELDS = {
    "new_seq": "#new-seq:",
    "new_token": "#new-token:",
    "cached_token": "#cached-token:",
    "running_req": "#running-req:",
    "token": "#token:",
    "full_token": "#full token:",
}
#: The "#running-req:" inside "Prefill batch(mixed #running-req: N)"; its value ends at ")".
MIXED = "(mixed #running-req:"
#: Columns of ``BatchLines.values``: ``#full token`` (hybrid models) is folded into ``token``.
VALUES = ["new_seq", "new_token", "cached_token", "running_req", "token", "mixed"]
CORE = {"prefill": ("new_seq", "new_token", "cached_token"), "decode": ("running_req", "token")}
STAMP = r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d$"
TAG = re.compile(r"^(?:[A-Z][A-Z_]*\d+ ?)*$")
# A cut line ends in a separator, or its last segment is a key with no ": value".
TRUNCATED = r"(?:[,:]\s*$)|(?:,\s*[^,:]*$)"
NO_STAMP = np.iinfo(np.int64).max  # no time in the line (sorts after every real one)


@dataclass
class BatchLines:
    """The ``Prefill batch`` / ``Decode batch`` lines of one chunk, one entry per line.

    ``values``/``present``/``ok`` have one row per name of ``VALUES``: ``present`` says the key is
    in the line, ``ok`` that an integer follows it (``values`` holds it, 0 otherwise). A field
    is read after the first occurrence of its key. Values the checks never look at (``#token``
    of a prefill line, say) may be left unread: ``present`` but not ``ok``.
    """
    row: np.ndarray  # line index in the chunk
    decode: np.ndarray  # bool; else prefill
    interleaved: np.ndarray  # bool: more than one " batch" in the line
    truncated: np.ndarray  # bool: TRUNCATED matches the line
    stamp: np.ndarray  # YYYYMMDDHHMMSS of the first "[20.." stamp, NO_STAMP if none or malformed
    tag: np.ndarray  # index into ``tags``
    tags: list[str]  # distinct rank-tag texts ("" for none)
    values: np.ndarray
    present: np.ndarray
    ok: np.ndarray

    def __len__(self) -> int:
        return len(self.row)

    def column(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value, present, ok) of field ``name``."""
        i = VALUES.index(name)
        return self.values[i], self.present[i], self.ok[i]

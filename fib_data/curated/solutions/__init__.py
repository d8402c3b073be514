"""Baseline solutions for the curated definitions, in python (torch, torch.compile, flashinfer
wrappers), triton and cuda. Kernel sources are real files in this folder; each solution row holds
the full text of one file (see ``rows.py``), its per-definition constants filled in.

A CUDA row (language ``cuda``, binding ``torch``) is one ``.cu`` file that includes
``<torch/extension.h>`` and defines its own ``PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)``; its
entry point ``<file>.cu::run`` names the bound function. Any torch-extension build works:
``cpp_extension.load(sources=[<file>.cu])`` (what ``fib_data.executor.build`` does) or
``load_inline(name, cpp_sources="", cuda_sources=[<text>])``; with TORCH_CUDA_ARCH_LIST unset torch
compiles for the visible GPU (sm_90 on H100).
"""

from __future__ import annotations

from .catalog import VARIANTS, kind_of
from .rows import solution_row


def solutions(definitions: list[dict]) -> list[dict]:
    """Every baseline for every definition whose kind has baselines, in a stable order."""
    rows = []
    for definition in definitions:
        for variant in VARIANTS.get(kind_of(definition) or "", []):
            rows.append(solution_row(definition, variant))
    return rows


__all__ = ["solutions"]

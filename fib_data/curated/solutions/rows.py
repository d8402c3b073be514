"""Solution rows made from the kernel files in this folder.

Every solution is ONE source file (so any builder can load it: as a package module, a loose
module or a torch extension). Per-definition numbers that cannot be read from tensor shapes (eps,
rope parameters, top-k) are module constants: ``NAME = value`` lines in Python files,
``constexpr <type> NAME = value;`` lines in CUDA files. They are copied from the definition's own
reference source, so a solution always agrees with the reference it is checked against.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from importlib import resources

from ...hashing import solution_hash

AUTHOR = "fib-data"


@dataclass(frozen=True)
class Variant:
    """One baseline for a definition kind: which file, which function, how it is called."""

    name: str  # suffix of the solution name: <definition>__<name>
    language: str  # python | triton | cuda
    file: str  # path under this folder, e.g. "triton/norm.py"
    function: str  # entry symbol in that file
    dps: bool
    description: str
    dependencies: tuple[str, ...] = ("torch",)
    constants: tuple[str, ...] = ()  # reference constants to copy into the file
    hardware: tuple[str, ...] = ("cpu", "cuda")
    extra: dict = field(default_factory=dict)  # constants fixed by the variant itself


def reference_constants(definition: dict) -> dict[str, object]:
    """Module-level ``NAME = <literal>`` assignments of the definition's reference source."""
    found: dict[str, object] = {}
    for node in ast.parse(definition["reference"]).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id.isupper():
                try:
                    found[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    return found


def kernel_source(path: str, constants: dict[str, object]) -> str:
    """Text of a kernel file with its constant lines set to the given values."""
    text = (resources.files(__package__) / path).read_text()
    for key, value in constants.items():
        pattern = re.compile(rf"^((?:constexpr \w+ )?){key} = [^;\n]*(;?)$", re.MULTILINE)
        if not pattern.search(text):
            raise KeyError(f"{path} has no constant line for {key}")
        literal = repr(float(value)) if path.endswith(".cu") else repr(value)
        text = pattern.sub(lambda m: f"{m.group(1)}{key} = {literal}{m.group(2)}", text, count=1)
    return text


def solution_row(definition: dict, variant: Variant) -> dict:
    refs = reference_constants(definition)
    missing = [c for c in variant.constants if c not in refs]
    if missing:
        raise KeyError(f"definition {definition['name']}: reference lacks constants {missing} "
                       f"that {variant.file} needs")
    constants = {c: refs[c] for c in variant.constants} | variant.extra
    file_name = variant.file.rsplit("/", 1)[-1]
    row = {
        "name": f"{definition['name']}__{variant.name}",
        "definition": definition["name"],
        "author": AUTHOR,
        "description": variant.description,
        "language": variant.language,
        "target_hardware": list(variant.hardware),
        "entry_point": f"{file_name}::{variant.function}",
        "destination_passing_style": variant.dps,
        "binding": "torch" if variant.language == "cuda" else None,
        "dependencies": list(variant.dependencies),
        "sources": [{"path": file_name, "content": kernel_source(variant.file, constants)}],
    }
    row["content_hash"] = solution_hash(row)
    return row

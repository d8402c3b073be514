"""What the checks share: the small tables loaded once, indexed by key."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dataset import Dataset
from .loading import Row


@dataclass
class Context:
    ds: Dataset
    definitions: list[Row]
    solutions: list[Row]
    workloads: list[Row]
    by_name: dict[str, dict] = field(default_factory=dict)  # definition name -> row
    solution_by_name: dict[str, dict] = field(default_factory=dict)
    workload_by_uuid: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name = {r.data["name"]: r.data for r in self.definitions}
        self.solution_by_name = {r.data["name"]: r.data for r in self.solutions}
        self.workload_by_uuid = {r.data["uuid"]: r.data for r in self.workloads}


def axis_values(definition: dict, workload: dict) -> dict[str, int]:
    """Const axes of the definition plus the workload's var axes."""
    values = {a["name"]: a["value"] for a in definition["axes"] if a["type"] == "const"}
    values.update((a["name"], a["value"]) for a in workload["axes"])
    return values

"""``--backend ray``: one actor per GPU (or per CPU worker) across a Ray cluster.

Each actor owns the same spawn worker a local run uses, on its own node, so fault isolation and
timing are identical; rows come back to the driver, which writes the same files.
"""

from __future__ import annotations

import os
from typing import Mapping


class RayAgent:
    def __init__(self, actor, name: str, device: str):
        self.actor, self.name, self.device = actor, name, device

    def start(self, preload: tuple[str, ...] | None = None) -> dict:
        import ray

        return ray.get(self.actor.start.remote(preload))

    def run(self, job: Mapping, timeout: float, build_timeout: float) -> dict:
        import ray

        return ray.get(self.actor.run.remote(job, timeout, build_timeout))

    def stop(self) -> None:
        import ray

        try:
            ray.get(self.actor.stop.remote(), timeout=30)
        finally:
            ray.kill(self.actor)


def ray_agents(address: str | None, devices: list[str]) -> list[RayAgent]:
    """Actors for ``devices``: 'cuda' entries get one GPU each, 'cpu' entries one CPU each.

    With ``devices == ['cuda']`` (or none given), one actor per GPU in the cluster.
    """
    import ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, ignore_reinit_error=True,
                 log_to_driver=False)
    if not devices or devices == ["cuda"]:
        devices = ["cuda"] * int(ray.cluster_resources().get("GPU", 0)) or ["cpu"]
    from .scheduler import LocalAgent

    actor_cls = ray.remote(LocalAgent)  # the actor is a local agent on its node
    agents = []
    for i, device in enumerate(devices):
        if device.startswith("cuda"):
            name, actor = f"ray-{i}-cuda", actor_cls.options(num_gpus=1, num_cpus=1).remote(f"ray-{i}", "cuda:0")
        else:
            name, actor = f"ray-{i}-cpu", actor_cls.options(num_cpus=1).remote(f"ray-{i}", "cpu")
        agents.append(RayAgent(actor, name, "cuda:0" if device.startswith("cuda") else "cpu"))
    return agents

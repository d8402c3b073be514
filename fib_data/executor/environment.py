"""The environment an evaluation ran in: hardware and library versions (part of the row key)."""

from __future__ import annotations

import platform
from importlib import metadata


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def capture_environment(device: str) -> dict:
    import torch

    # Plain str: torch.__version__ is a TorchVersion, and unpickling one in the parent would import
    # torch there (seconds, after the worker is ready, before the first job).
    env = {"gpu": None, "driver": None, "cuda": torch.version.cuda, "torch": str(torch.__version__),
           "triton": _version("triton"), "flashinfer": _version("flashinfer-python") or _version("flashinfer"),
           "python": platform.python_version(), "other_libs": []}
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(device)
        env.update(hardware=name, gpu=name, driver=_driver_version())
    else:
        env["hardware"] = f"cpu: {cpu_name()}"
        env["cuda"] = None
    return env


def _driver_version() -> str | None:
    try:
        import pynvml  # shipped with nvidia-ml-py, a flashinfer dependency

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else version
    except Exception:
        import subprocess

        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            return out.stdout.strip().splitlines()[0] if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError, IndexError):
            return None

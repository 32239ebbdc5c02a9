"""Environment check for chapter 0: versions, threads, device, data and cache folders."""

from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import sys
from typing import Any

# Packages the course needs, with the pins of requirements.txt checked against them.
CORE_PACKAGES = ("torch", "transformers", "trl", "datasets", "accelerate", "peft", "gguf", "safetensors",
                 "numpy", "pandas", "matplotlib", "seaborn", "papermill", "nbval", "jupyterlab", "ipykernel")


def pinned_versions(requirements: str | None = None) -> dict[str, str]:
    """``name -> version`` from the ``==`` pins of requirements.txt."""
    from w2s_helpers.core.paths import REPO_ROOT

    path = requirements or str(REPO_ROOT / "requirements.txt")
    pins = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            spec = line.split("#", 1)[0].strip()
            if "==" in spec:
                name, version = spec.split("==", 1)
                pins[name.strip().lower()] = version.strip()
    return pins


def package_report() -> list[dict[str, Any]]:
    """Installed version of each core package next to its pin."""
    try:
        pins = pinned_versions()
    except FileNotFoundError:
        pins = {}
    rows = []
    for name in CORE_PACKAGES:
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        pin = pins.get(name)
        ok = installed is not None and (pin is None or installed.split("+")[0] == pin)
        rows.append({"package": name, "installed": installed, "pinned": pin, "ok": ok})
    return rows


def system_report() -> dict[str, Any]:
    """Python, platform, CPU count, torch threads, the compute device and the precision ``"auto"``
    chooses on it (with the reason), data and cache folders."""
    import torch

    from w2s_helpers.core.models import resolve_device
    from w2s_helpers.core.precision import explain
    from w2s_helpers.core.store import cache_dir

    try:
        from w2s_helpers.core.data import resolve_data_dir

        data_dir: str = str(resolve_data_dir())
    except FileNotFoundError as e:
        data_dir = f"NOT FOUND ({e})"
    device = resolve_device("auto")
    choice = explain("auto", device)
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "precision": f"{choice.dtype} ({choice.reason})",
        "cuda_devices": torch.cuda.device_count(),
        "data_dir": data_dir,
        "cache_dir": str(cache_dir()),
        "hf_hub_offline": os.environ.get("HF_HUB_OFFLINE", ""),
    }
    if torch.cuda.is_available():
        info["cuda_name"] = torch.cuda.get_device_name(0)
    return info


def machine_line() -> str:
    """One line naming this machine for a published run: the CPU model and cores, the GPUs if
    any, and the precision "auto" chooses here."""
    import torch

    from w2s_helpers.core.models import resolve_device
    from w2s_helpers.core.precision import explain

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    line = f"{cpu}, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        line += f", {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return line + f", {explain('auto', resolve_device('auto')).dtype}"


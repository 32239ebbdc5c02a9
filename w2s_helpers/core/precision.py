"""Which floating-point precision this machine should compute in: chosen, never guessed.

bf16 halves memory traffic and, where the hardware has bf16 instructions (AVX-512 BF16 or AMX
on x86, the BF16 extension on Arm, most recent GPUs), runs matmuls faster than fp32. Where
it has none, the CPU emulates bf16 and the same matmul runs 100x or more *slower*. The
course therefore never hard-codes bf16 on a CPU:

    choice = precision.choose("cpu")       # Choice(dtype="float32", reason="...")
    precision.resolve("auto", "cpu")       # "float32" or "bfloat16"

``"auto"`` (the profiles' default) picks bf16 only where both hold:

1. the hardware claims native bf16 (:func:`cpu_bf16_flags`, or
   ``torch.cuda.is_bf16_supported()`` on a GPU), and
2. on a CPU, a measured bf16 matmul runs at least :data:`MIN_SPEEDUP` times the fp32 one
   (:func:`measure_matmul`); the claim alone is not trusted, because a library can still
   take an emulated path (for example when oneDNN is capped with ``ONEDNN_MAX_CPU_ISA``).

The decision is cached per machine (CPU model, flags, torch version, threads and the
environment variables that change torch's kernels) in ``<cache>/machine/``, so every run on
one machine uses the same precision, and a cache entry computed in one precision is never
read in the other (feature, activation and result keys all carry the resolved dtype).
``W2S_PRECISION=float32`` (or ``bfloat16``) overrides ``"auto"`` for a whole run.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Literal

from w2s_helpers.core.store import atomic_write_bytes, cache_dir, content_hash

Dtype = Literal["float32", "bfloat16"]

PRECISION_ENV = "W2S_PRECISION"
MIN_SPEEDUP = 1.2  # bf16 must beat fp32 by this factor on the measured matmul to be chosen
NATIVE_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX-512 BF16, Intel AMX, Arm FEAT_BF16
KERNEL_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
              "OMP_NUM_THREADS")
PROBE_VERSION = 1  # bump when the rule below changes: cached decisions then miss
_ALIASES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class Choice:
    """The precision chosen for a device, and the evidence.

    dtype:   ``"float32"`` or ``"bfloat16"``.
    reason:  one sentence a learner can read (printed by ``make check`` and chapter 0).
    device:  ``"cpu"``, ``"cuda"`` or ``"mps"``.
    native:  the hardware's bf16 capability that was found (flags, or the GPU's answer).
    gflops:  measured matmul throughput per dtype (CPU only; empty where nothing was measured).
    """

    dtype: Dtype
    reason: str
    device: str
    native: tuple[str, ...] = ()
    gflops: dict[str, float] = field(default_factory=dict)


def normalise(setting: str) -> str:
    """``"auto"``, ``"float32"`` or ``"bfloat16"`` (``fp32``/``bf16`` accepted); a clear error otherwise."""
    if setting == "auto":
        return setting
    if setting not in _ALIASES:
        raise ValueError(f"unknown precision {setting!r}; use 'auto', 'float32' or 'bfloat16'")
    return _ALIASES[setting]


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on Arm); empty elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def cpu_bf16_flags() -> tuple[str, ...]:
    """The native-bf16 flags this CPU reports (empty: bf16 would be emulated)."""
    flags = cpu_flags()
    return tuple(f for f in NATIVE_FLAGS if f in flags)


def measure_matmul(dtype: str, m: int = 512, k: int = 1024, n: int = 1024, budget_s: float = 0.3) -> float:
    """Best-of-repeats GFLOP/s of an [m, k] @ [k, n] matmul in ``dtype`` on the CPU, current threads.

    Stops after ``budget_s`` seconds (at least two timed repeats), so an emulated bf16 path,
    which can take a second a repeat, still costs only a few seconds once per machine.
    """
    import torch

    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=g).to(dt)
    b = torch.randn(k, n, generator=g).to(dt)
    a @ b  # warm-up: kernel selection, allocation
    best, start, reps = float("inf"), time.perf_counter(), 0
    while reps < 2 or (time.perf_counter() - start < budget_s and reps < 50):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return 2 * m * k * n / best / 1e9


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key() -> str:
    """What identifies this machine's precision decision: CPU, flags, torch, threads, kernel env vars."""
    import torch

    env = {k: os.environ.get(k, "") for k in KERNEL_ENV}
    return content_hash(cpu_name(), sorted(cpu_flags()), torch.__version__, torch.get_num_threads(), env,
                        PROBE_VERSION)


def decide_cpu(native: tuple[str, ...], gflops: dict[str, float] | None) -> Choice:
    """The rule itself, on evidence already gathered (pure, so tests can give it any machine).

    native: native-bf16 flags found; gflops: measured ``{"float32": x, "bfloat16": y}`` or
    None when nothing was measured (no flags: measuring cannot make bf16 eligible).
    """
    if not native:
        return Choice("float32", "this CPU reports no native bf16 (no avx512_bf16, amx_bf16 or bf16 flag): "
                                 "bf16 would be emulated, so fp32", "cpu", native, gflops or {})
    assert gflops is not None, "a CPU that claims bf16 is measured"
    speedup = gflops["bfloat16"] / gflops["float32"]
    measured = f"bf16 matmul {gflops['bfloat16']:.0f} vs fp32 {gflops['float32']:.0f} GFLOP/s ({speedup:.2g}x)"
    if speedup >= MIN_SPEEDUP:
        return Choice("bfloat16", f"native bf16 ({', '.join(native)}) and measured faster: {measured}",
                      "cpu", native, gflops)
    return Choice("float32", f"the CPU claims bf16 ({', '.join(native)}) but it is not faster here: {measured}; "
                             "so fp32", "cpu", native, gflops)


def _probe_cpu() -> Choice:
    native = cpu_bf16_flags()
    gflops = None
    if native:
        gflops = {dt: round(measure_matmul(dt), 1) for dt in ("float32", "bfloat16")}
    return decide_cpu(native, gflops)


def choose(device: str = "cpu", refresh: bool = False) -> Choice:
    """The ``"auto"`` precision of ``device`` (``cpu``, ``cuda[:i]`` or ``mps``), cached per machine.

    GPUs: bf16 where ``torch.cuda.is_bf16_supported()``; MPS: fp32. CPUs: :func:`decide_cpu`
    on this machine's flags and a measured matmul, read from ``<cache>/machine/`` after the
    first call (``refresh=True`` measures again).
    """
    import torch

    if device.startswith("cuda"):
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return Choice("bfloat16", f"{torch.cuda.get_device_name(0)} supports bf16", "cuda", ("cuda",))
        return Choice("float32", "this GPU does not support bf16", "cuda")
    if device == "mps":
        return Choice("float32", "bf16 is not used on Apple GPUs in this course", "mps")
    path = cache_dir("machine") / f"precision-{machine_key()}.json"
    if path.exists() and not refresh:
        try:
            d = json.loads(path.read_text())
            return Choice(d["dtype"], d["reason"], d["device"], tuple(d["native"]), d["gflops"])
        except (ValueError, KeyError, TypeError):
            pass  # unreadable: decide again
    got = _probe_cpu()
    atomic_write_bytes(path, json.dumps(asdict(got), indent=1).encode())
    return got


def resolve(setting: str = "auto", device: str = "cpu") -> Dtype:
    """The dtype to compute in: an explicit setting as given, ``"auto"`` as :func:`explain` says."""
    return explain(setting, device).dtype


def explain(setting: str = "auto", device: str = "cpu") -> Choice:
    """:func:`resolve` with its reason: the explicit setting, ``$W2S_PRECISION``, or :func:`choose`."""
    setting = normalise(setting)
    if setting != "auto":
        return Choice(setting, f"set explicitly to {setting}", device.split(":")[0])  # type: ignore[arg-type]
    env = os.environ.get(PRECISION_ENV, "").strip()
    if env and env != "auto":
        return Choice(normalise(env), f"set by {PRECISION_ENV}={env}", device.split(":")[0])  # type: ignore[arg-type]
    return choose(device.split(":")[0] if not device.startswith("cuda") else device)

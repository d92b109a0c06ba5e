"""What this process computes on: the CPU class torch's kernels use, the torch build, the threads.

Numerical results on CPU depend on the instruction set the kernels run with: oneDNN and ATen pick
AMX, AVX512-BF16, AVX512 or AVX2 code paths at run time, and bfloat16 results differ between them.
The environment variables that cap those choices (``ONEDNN_MAX_CPU_ISA``, ``ATEN_CPU_CAPABILITY``,
``MKL_ENABLE_INSTRUCTIONS``) let one machine emulate an older CPU class; everything here honours
them, so a run made under emulation records the class it emulated.
"""

from __future__ import annotations

import os
import platform
from typing import Any

#: CPU classes from the most to the least capable, as oneDNN names the ISA levels that matter here
CPU_CLASSES = ("amx", "avx512-bf16", "avx512", "avx2", "baseline")

#: ONEDNN_MAX_CPU_ISA values (case-insensitive, oneDNN's names) -> the highest class they allow
_ONEDNN_CAP = {
    "sse41": "baseline",
    "avx": "baseline",
    "avx2": "avx2",
    "avx2_vnni": "avx2",
    "avx2_vnni_2": "avx2",
    "avx512_core": "avx512",
    "avx512_core_vnni": "avx512",
    "avx512_core_bf16": "avx512-bf16",
    "avx10_1_512": "avx512-bf16",
    "avx512_core_fp16": "avx512-bf16",
    "avx512_core_amx": "amx",
    "avx10_1_512_amx": "amx",
    "avx512_core_amx_fp16": "amx",
    "avx10_1_512_amx_fp16": "amx",
    "all": "amx",
    "default": "amx",
}


def _detected_class() -> str:
    """The CPU's own class, from torch's cpuinfo (the instruction sets it reports)."""
    try:
        import torch

        if torch.cpu._is_amx_tile_supported():
            return "amx"
        if torch.cpu._is_avx512_bf16_supported():
            return "avx512-bf16"
        if torch.cpu._is_avx512_supported():
            return "avx512"
        if torch.cpu._is_avx2_supported():
            return "avx2"
    except (ImportError, AttributeError, RuntimeError):
        pass
    return "baseline"


def _lower(a: str, b: str) -> str:
    return max(a, b, key=CPU_CLASSES.index)


def cpu_class() -> str:
    """The class torch's kernels run with here: the CPU's own, capped by the emulation variables.

    ``ONEDNN_MAX_CPU_ISA`` caps oneDNN (matrix products, including bf16), ``ATEN_CPU_CAPABILITY``
    ATen's vectorised kernels; the lower of the caps wins. An unknown value is ignored (oneDNN
    ignores it too)."""
    found = _detected_class()
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().lower()
    if isa in _ONEDNN_CAP:
        found = _lower(found, _ONEDNN_CAP[isa])
    aten = os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if aten in ("default",):
        found = _lower(found, "baseline")
    elif aten == "avx2":
        found = _lower(found, "avx2")
    return found


def native_bf16() -> bool:
    """Whether bfloat16 matrix products run in hardware here (AMX or AVX512-BF16, not capped away),
    where bf16 autocast is faster than fp32; elsewhere it is emulated and slower."""
    return cpu_class() in ("amx", "avx512-bf16")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def compute_environment(precision: str | None = None, threads: int | None = None) -> dict[str, Any]:
    """The record every run's manifest and report carry: CPU class and model, the emulation
    variables in force, torch's version and kernel capability, threads and, when given, the
    precision the run used."""
    env: dict[str, Any] = {
        "cpu_class": cpu_class(),
        "cpu_model": cpu_model(),
        "emulation": {
            k: os.environ[k]
            for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")
            if os.environ.get(k)
        },
        "machine": platform.machine(),
    }
    try:
        import torch

        env["torch"] = torch.__version__
        env["aten_capability"] = torch.backends.cpu.get_cpu_capability()
        env["threads"] = threads if threads is not None else torch.get_num_threads()
    except ImportError:
        env["torch"] = None
        env["threads"] = threads
    if precision is not None:
        env["precision"] = precision
    return env


def describe(env: dict[str, Any]) -> str:
    """One line for reports: ``cpu avx2 (emulated: ONEDNN_MAX_CPU_ISA=AVX2), torch 2.13.0+cpu, 1 thread, fp32``."""
    emulated = ", ".join(f"{k}={v}" for k, v in sorted((env.get("emulation") or {}).items()))
    parts = [f"cpu {env.get('cpu_class')}" + (f" (emulated: {emulated})" if emulated else "")]
    parts.append(f"torch {env.get('torch')}")
    threads = env.get("threads")
    if threads is not None:
        parts.append(f"{threads} thread{'s' if threads != 1 else ''}")
    if env.get("precision"):
        parts.append(str(env["precision"]))
    return ", ".join(parts)

"""The CPU class a run computes with, as emulation variables cap it (pbt.hardware)."""

from __future__ import annotations

import pytest

from pbt import hardware
from pbt_world.config import AgentTrainConfig

EMULATION = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


@pytest.fixture
def amx_cpu(monkeypatch):
    for name in EMULATION:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hardware, "_detected_class", lambda: "amx")
    return monkeypatch


@pytest.mark.parametrize(
    ("env", "expected", "native"),
    [
        ({}, "amx", True),
        ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, "avx512-bf16", True),
        ({"ONEDNN_MAX_CPU_ISA": "avx512_core"}, "avx512", False),
        (
            {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
            "avx2",
            False,
        ),
        ({"ATEN_CPU_CAPABILITY": "avx2"}, "avx2", False),
        ({"ONEDNN_MAX_CPU_ISA": "not-an-isa"}, "amx", True),  # oneDNN ignores unknown values too
    ],
)
def test_emulation_variables_cap_the_cpu_class(amx_cpu, env, expected, native):
    for k, v in env.items():
        amx_cpu.setenv(k, v)
    assert hardware.cpu_class() == expected
    assert hardware.native_bf16() is native
    # 'auto' precision follows the emulated class, so an emulated AVX2 run trains as AVX2 CPUs do
    assert AgentTrainConfig(precision="auto").resolved().precision == ("bf16-mixed" if native else "fp32")


def test_a_cap_never_raises_the_class(monkeypatch):
    monkeypatch.setattr(hardware, "_detected_class", lambda: "avx2")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert hardware.cpu_class() == "avx2"


def test_compute_environment_names_class_torch_threads_precision(amx_cpu):
    import torch

    amx_cpu.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    env = hardware.compute_environment(precision="fp32", threads=3)
    assert env["cpu_class"] == "avx2" and env["emulation"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert env["torch"] == torch.__version__ and env["threads"] == 3 and env["precision"] == "fp32"
    assert hardware.describe(env) == (
        f"cpu avx2 (emulated: ONEDNN_MAX_CPU_ISA=AVX2), torch {torch.__version__}, 3 threads, fp32"
    )
    assert "precision" not in hardware.compute_environment()


def test_demo_agents_default_to_fp32_on_every_cpu(amx_cpu):
    """The demo's agents train in fp32 unless asked otherwise: 'auto' would give AMX, AVX512-BF16
    and AVX2 machines different agents (different bf16 kernels, or none)."""
    assert AgentTrainConfig().precision == "fp32"
    assert AgentTrainConfig().resolved().precision == "fp32"

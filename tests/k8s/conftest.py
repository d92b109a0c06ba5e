"""Fixtures of tests/k8s (marker `k8s`): the helm/kubectl tools and the CRD schemas."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from k8s_checks import CRDS, ROOT, SCENARIOS, TOOLS_BIN, CrdSchemas, Tools, render


@pytest.fixture(scope="session")
def k8s_tools() -> Tools:
    """helm and kubectl, fetched by `make tools` when .tools/bin lacks them."""
    helm, kubectl = TOOLS_BIN / "helm", TOOLS_BIN / "kubectl"
    if not (helm.exists() and kubectl.exists()):
        proc = subprocess.run(["make", "tools"], cwd=ROOT, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"`make tools` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return Tools(helm=helm, kubectl=kubectl)


@pytest.fixture(scope="session")
def crd_schemas() -> CrdSchemas:
    return CrdSchemas(CRDS)


@pytest.fixture(scope="session")
def rendered(k8s_tools: Tools) -> dict[str, list[dict[str, Any]]]:
    """Every chart scenario (k8s_checks.SCENARIOS) rendered once for the session."""
    return {name: render(k8s_tools, files) for name, files in SCENARIOS.items()}

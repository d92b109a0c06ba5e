"""Checks for the rendered Kubernetes manifests (tests/k8s, marker `k8s`).

helm and kubectl come from `make tools` (pinned, into .tools/bin). Core objects are validated
with kubernetes-validate against the Kubernetes OpenAPI schemas of KUBE_VERSION; custom resources
against the openAPIV3Schema of their CRD in k8s/crds (upstream CRDs vendored as schemas only),
made strict (unknown fields are errors, as with `kubectl apply --validate=strict`).
"""

from __future__ import annotations

import copy
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "pbt"
K8S = ROOT / "k8s"
CRDS = K8S / "crds"  # upstream CRDs, for validation only (k8s/crds/README.md)
TOOLS_BIN = ROOT / ".tools" / "bin"
# kubectl from `make tools` is v1.33; kubernetes-validate 1.37 ships schemas for 1.25 .. 1.37.
KUBE_VERSION = "1.33.0"
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
)

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Tools:
    helm: Path
    kubectl: Path


def load_all(text: str) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a multi-document stream."""
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc]


def run(cmd: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, **kwargs)


def helm_template(
    tools: Tools,
    values: Iterable[Path] = (),
    sets: Iterable[str] = (),
    extra: Iterable[str] = (),
    release: str = "pbt",
    namespace: str = "pbt",
) -> subprocess.CompletedProcess[str]:
    cmd: list[str | Path] = [tools.helm, "template", release, CHART, "--namespace", namespace]
    cmd += ["--kube-version", KUBE_VERSION]
    for f in values:
        cmd += ["-f", f]
    for s in sets:
        cmd += ["--set", s]
    cmd += list(extra)
    return run(cmd)


def render(tools: Tools, values: Iterable[Path] = (), sets: Iterable[str] = ()) -> list[dict[str, Any]]:
    """`helm template` that must succeed; the rendered objects."""
    proc = helm_template(tools, values, sets)
    assert proc.returncode == 0, f"helm template failed for {list(values)} {list(sets)}:\n{proc.stderr}"
    return load_all(proc.stdout)


# ---------------------------------------------------------------- schema validation


def _strict(schema: Any) -> Any:
    """A CRD schema where objects with declared properties reject unknown fields."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            out.get("type") == "object"
            and "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


class CrdSchemas:
    """openAPIV3Schema of every CRD version in a folder, keyed by (apiVersion, kind)."""

    def __init__(self, folder: Path) -> None:
        self.validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
        for path in sorted(folder.glob("*.yaml")):
            crd = yaml.load(path.read_text(), Loader=_Loader)
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                # metadata is ObjectMeta, checked by check_metadata; apiVersion/kind are fixed.
                schema["properties"]["metadata"] = {"type": "object"}
                strict = _strict(schema)
                self.validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(strict)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.validators

    def errors(self, obj: dict[str, Any]) -> list[str]:
        validator = self.validators[(obj["apiVersion"], obj["kind"])]
        return [
            f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        ]


def ident(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def check_metadata(obj: dict[str, Any]) -> list[str]:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    problems = []
    if not name or len(name) > 63 or not re.match(DNS_LABEL, name):
        problems.append(f"metadata.name {name!r} is not a DNS label of at most 63 characters")
    return problems


def validate_object(obj: dict[str, Any], crds: CrdSchemas, version: str = KUBE_VERSION) -> list[str]:
    """Problems of one object against its schema (empty list = valid): the CRD's schema for custom
    resources, else the Kubernetes schema of `version` (kubernetes-validate reports the first)."""
    problems = check_metadata(obj)
    key = (obj["apiVersion"], obj["kind"])
    if key in crds:
        return problems + crds.errors(obj)
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        problems.append(f"{path}: {exc.message}")
    except kubernetes_validate.SchemaNotFoundError:
        problems.append(f"no schema for {key} (neither Kubernetes {version} nor k8s/crds)")
    return problems


# ---------------------------------------------------------------- workload policy


@dataclass
class PodView:
    """The parts of a workload the policy looks at, whatever its kind."""

    owner: str
    pod: dict[str, Any]  # pod-level fields (securityContext, volumes, ...)
    pod_labels: dict[str, str]
    containers: list[dict[str, Any]]
    long_running: bool  # probes required


def pod_views(obj: dict[str, Any]) -> Iterator[PodView]:
    kind, spec = obj["kind"], obj.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        tpl = spec["template"]
        yield PodView(
            ident(obj),
            tpl["spec"],
            tpl.get("metadata", {}).get("labels", {}),
            tpl["spec"]["containers"],
            kind != "Job",
        )
    elif kind == "PyTorchJob":
        for rtype, rspec in spec["pytorchReplicaSpecs"].items():
            tpl = rspec["template"]
            yield PodView(
                f"{ident(obj)}[{rtype}]",
                tpl["spec"],
                tpl.get("metadata", {}).get("labels", {}),
                tpl["spec"]["containers"],
                False,
            )
    elif kind == "InferenceService":
        pred = spec["predictor"]
        containers = ([pred["model"]] if "model" in pred else []) + pred.get("containers", [])
        yield PodView(ident(obj), pred, pred.get("labels", {}), containers, True)


def _run_as_non_root(view: PodView, container: dict[str, Any]) -> bool:
    csc, psc = container.get("securityContext", {}), view.pod.get("securityContext", {})
    if csc.get("runAsUser") == 0 or psc.get("runAsUser") == 0:
        return False
    return bool(csc.get("runAsNonRoot", psc.get("runAsNonRoot", False)))


def _has_quantity(resources: dict[str, Any], section: str) -> bool:
    got = resources.get(section) or {}
    return "cpu" in got and "memory" in got


def policy_problems(view: PodView) -> list[str]:
    """No latest tags, requests and limits, non-root, hardened context, probes, labels."""
    out = []
    missing = [k for k in STANDARD_LABELS if k not in view.pod_labels]
    if missing:
        out.append(f"{view.owner}: pod labels lack {missing}")
    for c in view.containers:
        where = f"{view.owner} container {c.get('name', '<model>')}"
        image = c.get("image")
        if image is not None:
            tag = image.rsplit("/", 1)[-1].partition(":")[2].partition("@")[0]
            if "@sha256:" not in image and (not tag or tag == "latest"):
                out.append(f"{where}: image {image!r} has no pinned tag")
        res = c.get("resources") or {}
        for section in ("requests", "limits"):
            if not _has_quantity(res, section):
                out.append(f"{where}: resources.{section} must set cpu and memory (got {res.get(section)})")
        if not _run_as_non_root(view, c):
            out.append(f"{where}: not forced to run as non-root (runAsNonRoot)")
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{where}: allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            out.append(f"{where}: readOnlyRootFilesystem must be true")
        if "ALL" not in (sc.get("capabilities") or {}).get("drop", []):
            out.append(f"{where}: capabilities must drop ALL")
        if sc.get("privileged"):
            out.append(f"{where}: privileged")
        if view.long_running:
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    out.append(f"{where}: {probe} missing")
    return out


# ---------------------------------------------------------------- chart scenarios

CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
ENV_VALUES = sorted(K8S.glob("environments/*/values.yaml"))
# name -> values files; "default" is the chart's own values.yaml alone.
SCENARIOS: dict[str, list[Path]] = {"default": []}
SCENARIOS.update({f.name.removesuffix("-values.yaml"): [f] for f in CI_VALUES})
SCENARIOS.update({f"env-{f.parent.name}": [f] for f in ENV_VALUES})
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "PyTorchJob", "InferenceService"}


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[dict[str, Any]], kind: str, name_suffix: str) -> dict[str, Any]:
    """The single object of a kind whose name ends with name_suffix."""
    found = [o for o in by_kind(objs, kind) if o["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, got {[ident(o) for o in found]}"
    return found[0]


def pod_labels(objs: list[dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    return [(v.owner, v.pod_labels) for o in objs if o["kind"] in WORKLOAD_KINDS for v in pod_views(o)]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def scenario_values(scenario: str) -> dict[str, Any]:
    """The values of a scenario: the chart's values.yaml merged with its values files, as helm does."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for f in SCENARIOS[scenario]:
        values = _merge(values, yaml.safe_load(f.read_text()) or {})
    return values


# ---------------------------------------------------------------- the pbt CLI


def resolve_cli(argv: list[str]) -> tuple[click.Command, list[str]]:
    """The `pbt` (sub)command that argv selects, and the arguments left for it."""
    from pbt.cli.main import cli

    command: click.Command = cli
    ctx = click.Context(cli, info_name="pbt")
    rest = list(argv)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"`pbt ... {rest[0]}` is not a command (argv {argv})"
        command, rest = sub, rest[1:]
        ctx = click.Context(command, info_name=command.name, parent=ctx)
    return command, rest

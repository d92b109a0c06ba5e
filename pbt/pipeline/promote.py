"""`pbt promote VERDICT`: the GitOps change that promotes a passed verdict's adapter.

The change is to the environment's values file (``promotion.values_file`` of the spec, e.g.
``k8s/environments/production/values.yaml``): the adapter is added to
``agents.roles.<role>.adapters`` (``{name, path}``, path = the store key the PyTorchJob wrote) and
``servedAdapter`` points at it. The file is edited as text (its comments stay) and the result is
checked by parsing both versions. A failed verdict is refused, naming its failing gates.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pbt.errors import ConflictError, ValidationError


@dataclass
class PromotionResult:
    diff: str
    new_text: str
    values_file: Path
    branch: str | None = None
    #: the commit the remote branch holds after --push
    commit: str | None = None
    #: the remote branch already held this change (a retried push)
    already_pushed: bool = False


def read_verdict(ref: str) -> dict[str, Any]:
    if ref.startswith("store:"):
        from pbt.store import open_store

        return open_store().get_json(ref[len("store:") :])
    return json.loads(Path(ref).read_text(encoding="utf-8"))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block(lines: list[str], start: int, end: int, key: str, indent: int) -> tuple[int, int] | None:
    """[first, last) lines of the mapping entry `key:` at `indent` within lines[start:end]."""
    for i in range(start, end):
        line = lines[i]
        if _indent(line) == indent and line.strip().startswith(f"{key}:"):
            j = i + 1
            while j < end and (
                not lines[j].strip() or lines[j].lstrip().startswith("#") or _indent(lines[j]) > indent
            ):
                j += 1
            while j > i + 1 and not lines[j - 1].strip():
                j -= 1
            return i, j
    return None


def apply_promotion(text: str, role: str, name: str, path: str) -> str:
    """`text` (a values file) with adapter {name, path} added to agents.roles.<role> and served."""
    data = yaml.safe_load(text) or {}
    lines = text.splitlines()
    agents = _block(lines, 0, len(lines), "agents", 0)
    roles = agents and _block(lines, agents[0] + 1, agents[1], "roles", 2)
    block = roles and _block(lines, roles[0] + 1, roles[1], role, 4)
    if not block:
        raise ValidationError(f"no agents.roles.{role} block in the values file", field="promotion.role")
    role_values = data["agents"]["roles"][role] or {}
    adapters = [a for a in (role_values.get("adapters") or []) if a.get("name") != name]
    adapters.append({"name": name, "path": path})
    new_adapters = [
        "      adapters:",
        *(f"        - {{name: {a['name']}, path: {a['path']}}}" for a in adapters),
    ]
    start, end = block
    body = lines[start + 1 : end]
    out_body: list[str] = []
    i, placed = 0, False
    while i < len(body):
        line = body[i]
        if _indent(line) == 6 and line.strip().startswith("adapters:"):
            j = i + 1
            while j < len(body) and (
                not body[j].strip() or _indent(body[j]) > 6 or body[j].lstrip().startswith("- ")
            ):
                j += 1
            out_body += new_adapters
            placed = True
            i = j
            continue
        if _indent(line) == 6 and line.strip().startswith("servedAdapter:"):
            i += 1
            continue
        out_body.append(line)
        i += 1
    if not placed:
        out_body += new_adapters
    at = next(k for k, line in enumerate(out_body) if line.strip() == "adapters:")
    at += 1 + len(adapters)
    out_body.insert(at, f"      servedAdapter: {name}")
    new_lines = lines[: start + 1] + out_body + lines[end:]
    new_text = "\n".join(new_lines) + ("\n" if text.endswith("\n") else "")
    expected = json.loads(json.dumps(data))
    expected["agents"]["roles"][role] = {**role_values, "adapters": adapters, "servedAdapter": name}
    if yaml.safe_load(new_text) != expected:
        raise ValidationError(
            "the values file is laid out in a way this edit does not handle; edit it by hand"
        )
    return new_text


def promote(
    verdict_ref: str,
    *,
    values_file: Path | None = None,
    write: bool = False,
    push: bool = False,
    root: Path | None = None,
    remote: str | None = None,
) -> PromotionResult:
    verdict = read_verdict(verdict_ref)
    if not verdict.get("passed"):
        failing = ", ".join(verdict.get("failed_gates") or []) or "unknown"
        raise ConflictError(
            f"verdict of run {verdict.get('run')!r} failed (failing gates: {failing}); not promoting"
        )
    promo = verdict["promotion"]
    path = values_file or (root or Path.cwd()) / promo["values_file"]
    text = path.read_text(encoding="utf-8")
    new_text = apply_promotion(text, promo["role"], promo["adapter_name"], promo["adapter_path"])
    rel = promo["values_file"]
    diff = "".join(
        difflib.unified_diff(
            text.splitlines(keepends=True), new_text.splitlines(keepends=True), f"a/{rel}", f"b/{rel}"
        )
    )
    result = PromotionResult(diff=diff, new_text=new_text, values_file=path)
    if write or push:
        path.write_text(new_text, encoding="utf-8")
    if push:
        branch = f"{promo.get('branch_prefix', 'promote/')}{verdict['run']}"
        result.commit, result.already_pushed = _push(
            path, branch, verdict, remote or os.environ.get("PBT_GIT_REMOTE")
        )
        result.branch = branch
    return result


def without_credentials(remote: str) -> str:
    """`remote` as it may be shown: a URL's ``user:token@`` (a credential in the remote) becomes ``***@``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(remote)
    if "@" not in parts.netloc:
        return remote
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _push(path: Path, branch: str, verdict: dict[str, Any], remote: str | None) -> tuple[str, bool]:
    """Commit the values change on `branch` and push it to `remote` (the Git credential is git's
    own: a credential helper or GIT_ASKPASS set from the operator's Secret); returns the commit
    and whether the remote branch already held this change.

    A branch that already exists on the remote (a retried push) is left alone when its values file
    is the one this run renders; holding anything else, it is a ConflictError naming both commits."""
    if not remote:
        raise ValidationError(
            "pushing needs a Git credential: set PBT_GIT_REMOTE (and git's credential from the Secret "
            "named by promotion.git_secret)",
            field="--push",
        )
    cwd = path.parent

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise ValidationError(f"git {args[0]} failed: {proc.stderr.strip()[:300]}")
        return proc.stdout

    git("checkout", "-b", branch)
    git("add", str(path))
    git(
        "commit",
        "-m",
        f"promote {verdict['promotion']['adapter_name']} (run {verdict['run']}, eval {verdict['eval_id']})",
    )
    ours = git("rev-parse", "HEAD").strip()
    listed = git("ls-remote", "--heads", remote, f"refs/heads/{branch}").split()
    if not listed:
        git("push", remote, f"HEAD:refs/heads/{branch}")
        return ours, False
    theirs = listed[0]
    git("fetch", "--quiet", remote, f"refs/heads/{branch}")
    values = verdict["promotion"]["values_file"]
    proc = subprocess.run(
        ["git", "show", f"{theirs}:./{path.name}"], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    if proc.returncode == 0 and proc.stdout == path.read_text(encoding="utf-8"):
        return theirs, True
    holds = f"whose {values} differs from" if proc.returncode == 0 else f"which has no {values}, unlike"
    raise ConflictError(
        f"branch {branch} of {without_credentials(remote)} already exists at commit {theirs[:12]}, {holds} this run's "
        f"commit {ours[:12]}; not pushing (delete that branch or promote under another run id)"
    )

"""`kustomize build` of docker/k8s/, for the few fields its kustomization.yaml uses.

No kustomize renderer comes from the registries reached here (PyPI, npm, Debian), so the
tests render the kustomization themselves: `resources`, `images` (newName, newTag) and
`replacements` (a source field copied into target fields; `[name=x]` list selectors; the
`delimiter`/`index` options; a scalar target keeps its type, as kustomize >= 4.5.4 does).
Any other key is refused, so a kustomization that grows past this cannot pass unseen.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

KNOWN_KEYS = {"apiVersion", "kind", "resources", "images", "replacements"}


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def build(folder: Path, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rendered resources. `overrides` maps "Kind/name" to {fieldPath: value}, set in
    that resource before the transformers run (as a test's edit of one file)."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN_KEYS
    assert not unknown, f"kustomization keys this renderer does not know: {unknown}"
    resources: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        resources += load_documents(folder / name)
    for resource in resources:
        key = f"{resource['kind']}/{resource['metadata']['name']}"
        for path, value in (overrides or {}).get(key, {}).items():
            set_field(resource, path, value)
    for image in kustomization.get("images", []):
        for container in containers(resources):
            if container["image"].split(":")[0] == image["name"]:
                container["image"] = f"{image['newName']}:{image['newTag']}"
    for replacement in kustomization.get("replacements", []):
        source = replacement["source"]
        value = get_field(select(resources, source)[0], source["fieldPath"])
        for target in replacement["targets"]:
            for resource in select(resources, target["select"]):
                for path in target["fieldPaths"]:
                    replace(resource, path, value, target.get("options") or {})
    return resources


def containers(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for resource in resources:
        pod = resource.get("spec", {}).get("template", {}).get("spec", {})
        out += pod.get("containers", []) + pod.get("initContainers", [])
    return out


def select(resources: list[dict[str, Any]], selector: dict[str, Any]) -> list[dict[str, Any]]:
    found = [
        r
        for r in resources
        if r["kind"] == selector.get("kind", r["kind"])
        and r["metadata"]["name"] == selector.get("name", r["metadata"]["name"])
    ]
    assert found, f"nothing selected by {selector}"
    return found


def _steps(path: str) -> list[str]:
    return re.findall(r"\[[^\]]*\]|[^.\[\]]+", path)


def _child(node: Any, step: str) -> Any:
    if step.startswith("["):
        key, _, wanted = step[1:-1].partition("=")
        matches = [item for item in node if str(item.get(key)) == wanted]
        assert len(matches) == 1, f"{step}: {len(matches)} matches"
        return matches[0]
    if isinstance(node, list):
        return node[int(step)]
    return node[step]


def get_field(resource: dict[str, Any], path: str) -> Any:
    node: Any = resource
    for step in _steps(path):
        node = _child(node, step)
    return node


def set_field(resource: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = _steps(path)
    node: Any = resource
    for step in parents:
        node = _child(node, step)
    node[int(last) if isinstance(node, list) else last] = copy.deepcopy(value)


def replace(resource: dict[str, Any], path: str, value: Any, options: dict[str, Any]) -> None:
    current = get_field(resource, path)  # kustomize refuses a target field that is missing
    if options.get("delimiter"):
        parts = str(current).split(options["delimiter"])
        index = options.get("index", 0)
        if index < 0:
            parts.insert(0, str(value))
        elif index >= len(parts):
            parts.append(str(value))
        else:
            parts[index] = str(value)
        value = options["delimiter"].join(parts)
    if isinstance(current, str):  # a scalar target keeps its type
        value = str(value)
    elif isinstance(current, int) and not isinstance(current, bool):
        value = int(value)
    set_field(resource, path, value)

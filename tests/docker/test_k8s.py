"""docker/k8s/: every manifest validated offline against the Kubernetes versions the README
names, the kustomization rendered (the shard count written once), the Pod Security
"restricted" level, the failure policy against shadow's exit codes, and the merge step run.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from shadow.cli import build_parser
from shadow.config.settings import parse_shard
from shadow.errors import BUG_EXIT_CODE, ConfigError, TargetError, UsageError
from tests.docker import kustomize
from tests.support import LOGS, ROOT, run_shadow, shadow_cmd

kubernetes_validate = pytest.importorskip("kubernetes_validate")

K8S = ROOT / "docker" / "k8s"
# README "Kubernetes": 1.29 (backoffLimitPerIndex on by default) to the newest the validator knows.
VERSIONS = [f"1.{minor}" for minor in range(29, 38)]
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def rendered(completions: int | None = None) -> dict[str, dict[str, Any]]:
    overrides = (
        {} if completions is None else {"Job/shadow-replay": {"spec.completions": completions}}
    )
    return {f"{r['kind']}/{r['metadata']['name']}": r for r in kustomize.build(K8S, overrides)}


def replay_job() -> dict[str, Any]:
    return rendered()["Job/shadow-replay"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_and_the_rendered_kustomization_validate(version: str) -> None:
    documents = [d for path in MANIFESTS for d in kustomize.load_documents(path)]
    documents += list(rendered().values())
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)  # raises when invalid
    broken = json.loads(json.dumps(replay_job()))
    broken["spec"]["podFailurePolicy"]["rules"][0]["action"] = ["Ignore"]
    with pytest.raises(kubernetes_validate.ValidationError):  # the validator does reject
        kubernetes_validate.validate(broken, version, strict=True)
    misspelt = json.loads(json.dumps(replay_job()))
    misspelt["spec"]["ttlSecondsAfterFinish"] = 60
    with pytest.raises(kubernetes_validate.ValidationError):  # strict: unknown fields too
        kubernetes_validate.validate(misspelt, version, strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    listed = kustomize.yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == [p.name for p in MANIFESTS]


@pytest.mark.parametrize("shards", [4, 7])
def test_the_shard_count_is_written_once_and_reaches_every_place(shards: int) -> None:
    text = (K8S / "job.yaml").read_text()
    assert re.findall(r"^  completions: (\d+)", text, re.MULTILINE) == ["4"]
    job = rendered(shards)["Job/shadow-replay"]
    spec = job["spec"]
    assert spec["completions"] == spec["parallelism"] == shards
    container = spec["template"]["spec"]["containers"][0]
    env = env_of(container)
    shard = env["SHADOW_SHARD"]["value"]
    assert shard == f"$(JOB_COMPLETION_INDEX)/{shards}"
    names = list(env)  # $(VAR) in a value expands only variables defined before it
    assert names.index("JOB_COMPLETION_INDEX") < names.index("SHADOW_SHARD")
    path = env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert path == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    for index in (0, shards - 1):  # what each pod's --shard becomes
        assert parse_shard(shard.replace("$(JOB_COMPLETION_INDEX)", str(index))).count == shards
    assert container["image"] == "registry.example.com/shadow:0.1.0"


def pod_specs() -> list[dict[str, Any]]:
    return [r["spec"]["template"]["spec"] for r in rendered().values() if r["kind"] == "Job"]


def test_the_pods_pass_the_restricted_pod_security_level() -> None:
    # https://kubernetes.io/docs/concepts/security/pod-security-standards/ ("restricted")
    allowed_volumes = {"configMap", "emptyDir", "persistentVolumeClaim", "secret", "projected"}
    for pod in pod_specs():
        pod_context = pod["securityContext"]
        assert pod_context["runAsNonRoot"] is True and pod_context["runAsUser"] != 0
        assert pod_context["seccompProfile"]["type"] == "RuntimeDefault"
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
        for volume in pod["volumes"]:
            assert set(volume) - {"name"} <= allowed_volumes, volume
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert not context.get("capabilities", {}).get("add")
            assert not context.get("privileged") and context.get("runAsUser", 1) != 0
            # The root filesystem is read-only: whatever shadow writes goes to a volume.
            assert context["readOnlyRootFilesystem"] is True
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}
            assert not any("hostPort" in p for p in container.get("ports", []))


def test_no_namespace_is_hard_coded() -> None:
    for path in [*MANIFESTS, K8S / "kustomization.yaml"]:
        for document in kustomize.load_documents(path):
            assert "namespace" not in document.get("metadata", {}), path
            assert "namespace" not in document, path
        assert ".svc.cluster.local" not in path.read_text() and "default." not in path.read_text()


def test_the_jobs_end_and_are_cleaned_up_and_the_claim_names_its_class() -> None:
    resources = rendered()
    for name in ("Job/shadow-replay", "Job/shadow-report"):
        spec = resources[name]["spec"]
        assert spec["activeDeadlineSeconds"] > 0 and spec["ttlSecondsAfterFinished"] > 0
    claim = resources["PersistentVolumeClaim/shadow-data"]["spec"]
    assert claim["accessModes"] == ["ReadWriteMany"] and claim["storageClassName"]
    assert "REQUIRED" in (K8S / "pvc.yaml").read_text()


def test_the_failure_policy_follows_shadows_exit_codes() -> None:
    spec = replay_job()["spec"]
    assert spec["completionMode"] == "Indexed" and spec["backoffLimitPerIndex"] >= 1
    assert spec["template"]["spec"]["restartPolicy"] == "Never"  # podFailurePolicy needs it
    rules = spec["podFailurePolicy"]["rules"]
    # First: an evicted or preempted pod's partial shard is run again, whatever its code.
    assert rules[0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    actions = {}
    for rule in rules[1:]:
        codes = rule["onExitCodes"]
        assert codes["operator"] == "In" and codes["containerName"] == "shadow"
        actions.update(dict.fromkeys(codes["values"], rule["action"]))
    assert actions == {
        1: "FailIndex",  # differences beyond the thresholds: the shard's verdict
        UsageError.exit_code: "FailJob",  # 2: a config, capture or output every shard shares
        ConfigError.exit_code: "FailJob",
        BUG_EXIT_CODE: "FailJob",
    }
    container = spec["template"]["spec"]["containers"][0]
    args = container["args"]
    interrupted = int(args[args.index("--interrupted-exit-code") + 1])
    errors = int(args[args.index("--errors-exit-code") + 1])
    # Retried (counted): a target that was not ready, a shard stopped by a signal, and one
    # that failed only on request errors (no difference).
    assert not {TargetError.exit_code, interrupted, errors} & actions.keys()
    assert (interrupted, errors) == (143, 75)


def expanded(args: list[str], env: dict[str, Any], index: int) -> list[str]:
    values = {"JOB_COMPLETION_INDEX": str(index)}
    for name, entry in env.items():
        if "value" in entry:
            values[name] = re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], entry["value"])
    return [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], a) for a in args]


def test_the_replay_arguments_are_ones_shadow_accepts() -> None:
    container = replay_job()["spec"]["template"]["spec"]["containers"][0]
    args = expanded(container["args"], env_of(container), 3)
    parsed = build_parser().parse_args(args)
    assert parsed.command == "run" and parsed.shard == parse_shard("3/4")
    assert parsed.output == "/events/shard-3.jsonl" and parsed.interrupted_exit_code == 143
    assert parsed.errors_exit_code == 75
    # Each shard serves its metrics on the port the pod declares and its annotations name.
    host, port = parsed.metrics
    assert host == "0.0.0.0" and {"name": "metrics", "containerPort": port} in container["ports"]
    annotations = replay_job()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/config", "/capture", "/events"} <= mounts


@pytest.mark.e2e
def test_the_config_it_mounts_is_accepted_and_attaches_by_service_name(tmp_path: Path) -> None:
    config = tmp_path / "shadow.toml"
    config.write_text(rendered()["ConfigMap/shadow-config"]["data"]["shadow.toml"])
    # The Job's secrets come from the shadow-auth Secret; check loads them as a run does.
    secrets = {"CGRANTS_API_TOKEN": "test-token", "SECRET_KEY": "test-secret"}
    checked = run_shadow("check", "-c", str(config), "--print", env=secrets)
    assert checked.returncode == 0, checked.stderr
    targets = tomllib.loads(checked.stdout.decode())["targets"]
    assert {t["url"] for t in targets.values()} == {"http://legacy:8002", "http://rewrite:3000"}
    assert all("command" not in t for t in targets.values())  # attached, none started


@pytest.mark.e2e
def test_the_merge_step_reports_every_shard_with_the_html(tmp_path: Path) -> None:
    # The shards' files as the replay Job writes them (the demo, 3 shards), then the report
    # Job's own command, its /events mount being this folder and `shadow` this checkout's.
    events = tmp_path / "events"
    events.mkdir()
    for index in range(3):
        out = events / f"shard-{index}.jsonl"
        run = run_shadow(
            "demo", "-q", "--shard", f"{index}/3", "--output", str(out),
            "--run-dir", str(tmp_path / f"run-{index}"),
        )  # fmt: skip
        assert run.returncode in (0, 1), run.stderr
    container = rendered()["Job/shadow-report"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "-c"]
    script = container["args"][0].replace("/events", str(events))
    shadow = " ".join(shlex.quote(word) for word in shadow_cmd())
    script = script.replace("exec shadow ", f"exec {shadow} ")
    proc = subprocess.run(
        ["/bin/sh", "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    # Every record of the capture, once, and the demo's two bugs: the whole run's verdict.
    records = len((LOGS / "passport-demo.jsonl").read_text().splitlines())
    assert proc.stdout.startswith("shadow report: FAIL (2 mismatched")
    assert f"{records} requests: {records - 2} matched, 2 mismatched" in proc.stdout
    html = (events / "report.html").read_text()
    assert all(f"shard-{i}.jsonl" in html for i in range(3)) and "<svg" in html

"""Namespaces: Pod Security levels (pure builder)."""

from __future__ import annotations

import copy

import celpy
import pytest

from components.config import Namespaces as NamespaceNames
from components.namespaces import build_pod_policy, namespace_manifest, platform_levels


def test_only_the_build_namespace_is_not_restricted() -> None:
    levels = platform_levels(NamespaceNames())
    relaxed = {role for role, (_, level) in levels.items() if level != "restricted"}
    assert relaxed == {"build"}
    assert set(levels) == {"events", "workflows", "argocd", "rollouts", "build"}


def test_namespace_names_come_from_settings() -> None:
    levels = platform_levels(NamespaceNames(workflows="wf", build="builds"))
    assert levels["workflows"][0] == "wf"
    assert levels["build"][0] == "builds"


def test_namespace_manifest_enforces_audits_and_warns_at_its_level() -> None:
    labels = namespace_manifest("datacollect", "restricted", "service")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


# ------------------------------------------------------------------ build pod policy
# The ValidatingAdmissionPolicy's CEL is evaluated for real (cel-python), against a
# rootless BuildKit pod that must pass and variants that must not.


BUILDKIT_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
        "initContainers": [
            {"name": "init", "image": "argoexec", "securityContext": {"allowPrivilegeEscalation": False}},
        ],
        "containers": [
            {
                "name": "main",
                "image": "buildkit-ecr:1.0.0",
                # The three relaxations rootless BuildKit needs:
                "securityContext": {
                    "seccompProfile": {"type": "Unconfined"},
                    "appArmorProfile": {"type": "Unconfined"},
                    "allowPrivilegeEscalation": True,
                    "runAsUser": 1000,
                },
            },
            {"name": "wait", "image": "argoexec"},
        ],
        "volumes": [{"name": "state", "emptyDir": {}}, {"name": "key", "secret": {"secretName": "k"}}],
    },
}


def denials(pod: dict) -> list[str]:
    """Messages of the validations `pod` fails, as the API server would evaluate them."""
    policy, _ = build_pod_policy("argo-build")
    spec = policy["spec"]
    env = celpy.Environment()
    obj = celpy.json_to_cel(pod)
    [variable] = spec["variables"]
    containers = env.program(env.compile(variable["expression"])).evaluate({"object": obj})
    variables = celpy.celtypes.MapType({celpy.celtypes.StringType("containers"): containers})
    activation = {"object": obj, "variables": variables}
    failed = []
    for validation in spec["validations"]:
        result = env.program(env.compile(validation["expression"])).evaluate(activation)
        if result is not True and result != celpy.celtypes.BoolType(True):
            failed.append(validation["message"])
    return failed


def variant(change) -> dict:  # type: ignore[no-untyped-def]
    pod = copy.deepcopy(BUILDKIT_POD)
    change(pod["spec"])
    return pod


def test_rootless_buildkit_pod_is_admitted() -> None:
    assert denials(BUILDKIT_POD) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["containers"][0]["securityContext"].update(privileged=True), "privileged"),
        (lambda s: s["initContainers"][0].update(securityContext={"privileged": True}), "privileged"),
        (lambda s: s["volumes"].append({"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}), "hostPath"),
        (lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}), "volume types"),
        (lambda s: s.update(hostNetwork=True), "host namespaces"),
        (lambda s: s.update(hostPID=True), "host namespaces"),
        (lambda s: s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]), "host ports"),
        (
            lambda s: s["containers"][0]["securityContext"].update(capabilities={"add": ["SYS_ADMIN"]}),
            "capabilities",
        ),
        (lambda s: s["securityContext"].pop("runAsNonRoot"), "non-root"),
        (lambda s: s["containers"][1].update(securityContext={"runAsUser": 0}), "non-root"),
        (lambda s: s["containers"][0]["securityContext"].update(procMount="Unmasked"), "/proc"),
    ],
)
def test_anything_beyond_the_three_relaxations_is_denied(change, message: str) -> None:  # type: ignore[no-untyped-def]
    failed = denials(variant(change))
    assert any(message in m for m in failed), failed


def test_policy_is_bound_to_the_build_namespace_only() -> None:
    _, binding = build_pod_policy("argo-build")
    assert binding["spec"]["matchResources"] == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "argo-build"}}
    }
    assert binding["spec"]["validationActions"] == ["Deny"]

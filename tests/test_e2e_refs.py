"""`components.e2e.refs`: what a pod names, judged on hand-made pod dicts (no server)."""

from __future__ import annotations

from typing import Any

from components.e2e import refs

OBJECTS: dict[tuple[str, str], set[str]] = {
    ("ServiceAccount", "release-x"): set(),
    ("Secret", "ssh"): {"ssh-privatekey"},
    ("Secret", "slack"): {"slack-token"},
    ("Secret", "executor.service-account-token"): {"token", "ca.crt"},
    ("ConfigMap", "scripts"): {"a.py"},
}


def _lookup(kind: str, name: str) -> set[str] | None:
    return OBJECTS.get((kind, name))


def _pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "serviceAccountName": "release-x",
        "volumes": [
            {"name": "ssh-key", "secret": {"secretName": "ssh", "items": [{"key": "ssh-privatekey", "path": "k"}]}},
            {"name": "scripts", "configMap": {"name": "scripts"}},
            {"name": "exec-token", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token"}},
                {"secret": {"name": "executor.service-account-token", "items": [{"key": "token", "path": "t"}]}}]}},
        ],
        "initContainers": [{"name": "init", "envFrom": [{"configMapRef": {"name": "scripts"}}]}],
        "containers": [
            {"name": "main", "env": [{"name": "SLACK", "valueFrom": {"secretKeyRef": {"name": "slack",
                                                                                    "key": "slack-token"}}}]},
            {"name": "wait", "env": [{"name": "X", "value": "y"}]},
        ],
    }
    base.update(spec)
    return {"metadata": {"namespace": "argo", "name": "p-1"}, "spec": base}


def test_every_reference_of_a_pod_is_listed() -> None:
    listed = {(r.kind, r.name, r.key, r.where) for r in refs.pod_refs(_pod(imagePullSecrets=[{"name": "ssh"}]))}
    assert listed == {
        ("ServiceAccount", "release-x", None, "pod"),
        ("Secret", "ssh", None, "pod"),
        ("Secret", "ssh", "ssh-privatekey", "pod"),
        ("ConfigMap", "scripts", None, "pod"),
        ("Secret", "executor.service-account-token", None, "pod"),
        ("Secret", "executor.service-account-token", "token", "pod"),
        ("ConfigMap", "scripts", None, "container init"),
        ("Secret", "slack", "slack-token", "container main"),
    }
    assert refs.check_pod(_pod(imagePullSecrets=[{"name": "ssh"}]), _lookup) == ([], [])


def test_a_missing_object_or_key_names_pod_container_and_object() -> None:
    pod = _pod()
    pod["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"] = "gone"
    pod["spec"]["volumes"][0]["secret"]["items"][0]["key"] = "id_rsa"
    pod["spec"]["initContainers"][0]["envFrom"] = [{"secretRef": {"name": "absent"}}]
    problems, notes = refs.check_pod(pod, _lookup)
    assert notes == []
    assert problems == [
        "pod argo/p-1, container init: envFrom[0] secretRef names Secret argo/absent, which does not exist",
        "pod argo/p-1, container main: env SLACK secretKeyRef names Secret argo/gone, which does not exist",
        "pod argo/p-1, pod: volume ssh-key secret.items names key 'id_rsa' of Secret argo/ssh, which it does not hold",
    ]


def test_a_missing_service_account_or_pull_secret_fails_and_default_is_the_implicit_account() -> None:
    problems, _ = refs.check_pod(_pod(serviceAccountName="nobody", imagePullSecrets=[{"name": "regcred"}]), _lookup)
    assert problems == [
        "pod argo/p-1, pod: spec.imagePullSecrets names Secret argo/regcred, which does not exist",
        "pod argo/p-1, pod: spec.serviceAccountName names ServiceAccount argo/nobody, which does not exist",
    ]
    pod = _pod()
    del pod["spec"]["serviceAccountName"]
    assert refs.check_pod(pod, _lookup)[0] == [
        "pod argo/p-1, pod: spec.serviceAccountName names ServiceAccount argo/default, which does not exist"]


def test_an_optional_reference_may_be_absent_and_is_said() -> None:
    pod = _pod()
    pod["spec"]["volumes"][1]["configMap"] = {"name": "later", "optional": True}
    pod["spec"]["containers"][1]["env"].append(
        {"name": "T", "valueFrom": {"configMapKeyRef": {"name": "scripts", "key": "b.py", "optional": True}}})
    problems, notes = refs.check_pod(pod, _lookup)
    assert problems == []
    assert notes == [
        "pod argo/p-1, container wait: env T configMapKeyRef names key 'b.py' of ConfigMap argo/scripts, which it "
        "does not hold (optional: the kubelet skips it)",
        "pod argo/p-1, pod: volume scripts configMap names ConfigMap argo/later, which does not exist "
        "(optional: the kubelet skips it)",
    ]


def test_a_missing_volume_object_is_said_once_not_once_per_item() -> None:
    pod = _pod()
    pod["spec"]["volumes"][0]["secret"]["secretName"] = "gone"
    assert refs.check_pod(pod, _lookup)[0] == [
        "pod argo/p-1, pod: volume ssh-key secret names Secret argo/gone, which does not exist"]

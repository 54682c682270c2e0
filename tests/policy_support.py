"""What the policy pack's tests share: the pack (`rp`), resources that comply, and helpers.

Owns: putting `policy/` on `sys.path` and importing `release_policies` as `rp`; the
resource types and a stack `CTX`; builders of compliant resources of every kind the pack
judges (`build_template`, `release_template`, `sensor`, `ecr_repository`, ...); `_with`
(a copy with one field changed); `policy_messages` (one policy's messages, through the
pack's table); `BadCase`, `bad_cases` and `assert_reports` for each topic's table of
violations; `pulumi_config` (a stack's config as the engine passes it to the pack).
Does not own: the tests (tests/test_policy*.py, one per module of `policy/`).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policy"
if str(POLICY) not in sys.path:
    sys.path.insert(0, str(POLICY))

import release_policies as rp  # noqa: E402

BUILD_NS = "argo-build"
REGISTRY = "111111111111.dkr.ecr.us-east-1.amazonaws.com/release-pipeline"
BUILDKIT = f"{REGISTRY}/buildkit-ecr:1.0.0"
TOOLS = f"{REGISTRY}/release-tools:1.1.0"
CTX = rp.Context(build_namespace=BUILD_NS, buildkit_image=BUILDKIT, cache_tag="buildcache")

WORKFLOW_TEMPLATE = "kubernetes:argoproj.io/v1alpha1:WorkflowTemplate"
WORKFLOW = "kubernetes:argoproj.io/v1alpha1:Workflow"
SENSOR = "kubernetes:argoproj.io/v1alpha1:Sensor"
EVENT_SOURCE = "kubernetes:argoproj.io/v1alpha1:EventSource"
APP_PROJECT = "kubernetes:argoproj.io/v1alpha1:AppProject"
ROLLOUT = "kubernetes:argoproj.io/v1alpha1:Rollout"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIG_FILE = "kubernetes:yaml/v2:ConfigFile"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
SECRET = "kubernetes:core/v1:Secret"
ECR = "aws:ecr/repository:Repository"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ECR_REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
ECR_REGISTRY_POLICY = "aws:ecr/registryPolicy:RegistryPolicy"
WEBHOOK = "github:index/repositoryWebhook:RepositoryWebhook"
DEPLOY_KEY = "github:index/repositoryDeployKey:RepositoryDeployKey"
RULESET = "github:index/repositoryRuleset:RepositoryRuleset"

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
BUILDKIT_RELAXED = {
    "allowPrivilegeEscalation": True,
    "appArmorProfile": {"type": "Unconfined"},
    "capabilities": {"drop": ["ALL"]},
    "privileged": False,
    "runAsNonRoot": True,
    "seccompProfile": {"type": "Unconfined"},
}


def policy_messages(policy: str, resource_type: str, inputs: Any, options: Any = None,
                    context: rp.Context = CTX) -> list[str]:
    """The messages of one policy, found through the pack's table (as the pack runs it)."""
    return rp.violations(resource_type, inputs, options or {}, context).get(policy, [])


# ----------------------------------------------------------------- builders


def build_template(namespace: str = BUILD_NS, image: str = BUILDKIT, kind: str = "WorkflowTemplate") -> dict:
    """A build WorkflowTemplate shaped like the contract's: BuildKit relaxed, the rest restricted."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "svc-build", "namespace": namespace},
        "spec": {
            "arguments": {"parameters": [{"name": "revision"}]},
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "templates": [
                {
                    "name": "image-exists",
                    "container": {
                        "image": TOOLS,
                        "command": ["python3", "/opt/release-pipeline/scripts/image_exists.py"],
                        "env": [{"name": "REVISION", "value": "{{workflow.parameters.revision}}"}],
                        "securityContext": copy.deepcopy(RESTRICTED),
                    },
                },
                {
                    "name": "build",
                    "container": {
                        "name": "main",
                        "image": image,
                        "command": ["buildctl-daemonless.sh"],
                        "args": ["build", "--frontend", "dockerfile.v0"],
                        "env": [{"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"}],
                        "securityContext": copy.deepcopy(BUILDKIT_RELAXED),
                        "volumeMounts": [{"name": "state", "mountPath": "/home/user/.local/share/buildkit"}],
                    },
                    "volumes": [{"name": "state", "emptyDir": {}}],
                },
            ],
        },
    }


def release_template() -> dict:
    """A release WorkflowTemplate: payload only in env values, a build Workflow by manifest."""
    child = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "svc-build-", "namespace": BUILD_NS},
        "spec": {
            "workflowTemplateRef": {"name": "svc-build"},
            "arguments": {"parameters": [{"name": "revision", "value": "{{workflow.parameters.revision}}"}]},
        },
    }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "svc-release", "namespace": "argo"},
        "spec": {
            "arguments": {"parameters": [{"name": p} for p in ("revision", *sorted(rp.PAYLOAD_PARAMETERS))]},
            "templates": [
                {
                    "name": "release",
                    "dag": {
                        "tasks": [
                            {"name": "build", "template": "build"},
                            {
                                "name": "notify",
                                "template": "notify",
                                "arguments": {
                                    "parameters": [{"name": "title", "value": "{{workflow.parameters.pr-title}}"}]
                                },
                                "when": "{{tasks.build.status}} == Succeeded",
                            },
                        ]
                    },
                },
                {
                    "name": "build",
                    "resource": {"action": "create", "manifest": yaml.safe_dump(child)},
                },
                {
                    "name": "notify",
                    "inputs": {"parameters": [{"name": "title"}]},
                    "script": {
                        "image": TOOLS,
                        "command": ["python3"],
                        "source": 'import os\nprint(os.environ["PR_TITLE_B64"], os.environ["AUTHOR_B64"])\n',
                        "env": [
                            {"name": "PR_TITLE_B64", "value": "{{inputs.parameters.title}}"},
                            {"name": "AUTHOR_B64", "value": "{{workflow.parameters.author}}"},
                            {"name": "REVISION", "value": "{{workflow.parameters.revision}}"},
                            {"name": "PR_NUMBER", "value": "{{workflow.parameters.pr-number}}"},
                            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "slack", "key": "token"}}},
                        ],
                        "securityContext": copy.deepcopy(RESTRICTED),
                    },
                },
            ],
        },
    }


def sensor(**sources: dict) -> dict:
    """A Sensor's k8s trigger: the release's arguments from the merged PR (as components.sensors builds it)."""
    arguments = ["revision", "pr-number", "pr-title", "author", "repository", "trigger"]
    default = {
        "revision": {"dataKey": "body.pull_request.merge_commit_sha"},
        "pr-number": {"dataKey": "body.pull_request.number"},
        "pr-title": {"dataTemplate": "b64:{{ .Input.body.pull_request.title | toString | b64enc }}"},
        "author": {"dataTemplate": "b64:{{ .Input.body.pull_request.user.login | toString | b64enc }}"},
        "repository": {"dataTemplate": "b64:{{ .Input.body.repository.full_name | toString | b64enc }}"},
        "trigger": {"dataTemplate": "pull_request"},
    } | sources
    return {"spec": {
        "dependencies": [{"name": "merged", "filters": {"data": [
            {"path": "body.pull_request.merge_commit_sha", "type": "string", "value": ["^[0-9a-f]{40}$"]},
            {"path": "body.pull_request.number", "type": "string", "value": ["^[1-9][0-9]{0,9}$"]},
        ]}}],
        "triggers": [{"template": {"k8s": {
            "source": {"resource": {"spec": {"arguments": {"parameters": [{"name": a, "value": ""}
                                                                          for a in arguments]}}}},
            "parameters": [{"src": {"dependencyName": "merged", **default[a]},
                            "dest": f"spec.arguments.parameters.{i}.value"} for i, a in enumerate(arguments)],
        }}}],
    }}


def deployment(pod_spec: dict) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "team"},
        "spec": {"template": {"metadata": {}, "spec": pod_spec}},
    }


def pod_spec(**extra: Any) -> dict:
    spec = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": "app:1.0.0", "securityContext": copy.deepcopy(RESTRICTED)}],
    }
    spec.update(extra)
    return spec


def ecr_repository(**changes: Any) -> dict:
    inputs = {
        "name": "dev/datacollect-vbsiv",
        "encryptionConfigurations": [{"encryptionType": "AES256"}],
        "forceDelete": False,
        "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
        "imageTagMutabilityExclusionFilters": [{"filter": "buildcache", "filterType": "WILDCARD"}],
    }
    inputs.update(changes)
    return inputs


def event_source(**event_changes: Any) -> dict:
    event = {
        "active": True,
        "contentType": "json",
        "events": ["pull_request", "push"],
        "repositories": [{"owner": "Appen", "names": ["repo"]}],
        "webhook": {"endpoint": "/github/appen-repo", "method": "POST", "port": "12000",
                    "url": "https://events.dev.example.com"},
        "webhookSecret": {"name": "github-webhook-appen-repo", "key": "secret"},
    }
    event.update(event_changes)
    event = {k: v for k, v in event.items() if v is not None}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "github", "namespace": "argo-events"},
        "spec": {"eventBusName": "default", "github": {"appen-repo": event}},
    }


def webhook(**configuration: Any) -> dict:
    config = {
        "contentType": "json",
        "insecureSsl": False,
        "secret": "0123456789abcdef0123456789abcdef01234567",
        "url": "https://events.dev.example.com/github/appen-repo",
    }
    config.update(configuration)
    return {
        "active": True,
        "events": ["pull_request", "push"],
        "repository": "repo",
        "configuration": {k: v for k, v in config.items() if v is not None},
    }


def app_project(**spec_changes: Any) -> dict:
    spec = {
        "clusterResourceWhitelist": [],
        "destinations": [{"namespace": "datacollect", "server": "https://kubernetes.default.svc"}],
        "namespaceResourceBlacklist": [{"group": "argoproj.io", "kind": "*"}],
        "sourceNamespaces": [],
        "sourceRepos": ["git@github.com:Org/helm.git"],
    }
    spec.update(spec_changes)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "datacollect", "namespace": "argocd"}, "spec": spec}


def role(rules: list[dict]) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "r", "namespace": "argo"}, "rules": rules}


GOOD_RULE = {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create", "get"]}


def argo_cd(cm: dict | None = None, params: dict | None = None, **values: Any) -> dict:
    base_cm = {"admin.enabled": "false", "users.anonymous.enabled": "false", "exec.enabled": "false"}
    base_cm.update(cm or {})
    return {"chart": "argo-cd", "name": "argocd", "namespace": "argocd",
            "values": {"configs": {"cm": base_cm, "params": params or {}}, **values}}


def argo_workflows(**server: Any) -> dict:
    base = {"authModes": ["sso"], "sso": {"enabled": True, "insecureSkipVerify": False}}
    base.update(server)
    return {"chart": "argo-workflows", "name": "argo-workflows", "namespace": "argo", "values": {"server": base}}


def iam_policy(*statements: dict) -> dict:
    return {"name": "push", "role": "r", "policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})}


def ecr_grant(principal: Any = None, actions: list[str] | None = None) -> dict:
    """An ECR repository (or registry) policy as the program writes one: an account may pull."""
    statement = {
        "Sid": "PromoteToLive",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::222222222222:root"} if principal is None else principal,
        "Action": actions or ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    }
    return {"policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
            "repository": "integration/app"}


LOGIN = {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"}
PUSH = {"Effect": "Allow", "Action": ["ecr:PutImage", "ecr:BatchGetImage"],
        "Resource": ["arn:aws:ecr:us-east-1:111111111111:repository/dev/x"]}


def ruleset(**changes: Any) -> dict:
    inputs = {
        "bypassActors": [{"actorId": 1000001, "actorType": "Integration", "bypassMode": "always"}],
        "conditions": {"refName": {"excludes": [], "includes": ["refs/heads/development"]}},
        "enforcement": "active",
        "name": "release-pipeline-dev-gitops-branch",
        "repository": "helm",
        "rules": {"creation": True, "deletion": True, "nonFastForward": True},
        "target": "branch",
    }
    inputs.update(changes)
    return inputs


BadCase = tuple[str, str, str, Any, str, dict, rp.Context]
BAD_FIELDS = ("policy", "resource_type", "inputs", "fragment", "options", "context")


def bad_cases(cases: list[BadCase]) -> pytest.MarkDecorator:
    """Parametrize a test over a table of violations: (id, policy, type, inputs, fragment, options, context)."""
    return pytest.mark.parametrize(BAD_FIELDS, [b[1:] for b in cases], ids=[b[0] for b in cases])


def assert_reports(
    policy: str, resource_type: str, inputs: Any, fragment: str, options: dict, context: rp.Context
) -> None:
    """`policy` reports the resource, with a message that holds `fragment`."""
    messages = policy_messages(policy, resource_type, inputs, options, context)
    assert messages, f"{policy} found nothing in {resource_type}"
    assert any(fragment in m for m in messages), messages


def _with(inputs: dict, path: str, value: Any) -> dict:
    """A copy of `inputs` with the dotted `path` (list indexes as numbers) set to `value`."""
    out = copy.deepcopy(inputs)
    keys = path.split(".")
    node: Any = out
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


BK = "spec.templates.1.container"  # the BuildKit container of build_template()
TOOL = "spec.templates.0.container"  # the other container of build_template()


def pulumi_config(stack: str) -> dict[str, str]:
    """The stack's config as the engine passes it to the pack (`PULUMI_CONFIG`): objects as JSON."""
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))["config"]
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}

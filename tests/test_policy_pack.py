"""The Pulumi wiring (`policy/policy_pack.py`, `policy/__main__.py`).

All policies are registered mandatory; unknown values are tolerated; the stack context
comes from the engine's config; and the real analyzer process, spoken to over gRPC as
the engine does, reports nothing on a rendered stack and a mandatory violation on a bad
resource.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from components.config import PROJECT
from tests.policy_support import (
    CTX,
    ECR,
    POLICY,
    WORKFLOW_TEMPLATE,
    _with,
    build_template,
    ecr_repository,
    pulumi_config,
    rp,
)


def _pulumi_policy() -> Any:
    return pytest.importorskip(
        "pulumi_policy", reason="pulumi-policy is not installed: `make setup` (requirements-dev.txt pins it)"
    )


def test_policies_are_registered_mandatory() -> None:
    pp = _pulumi_policy()
    import policy_pack

    policies = policy_pack.policies(CTX)
    assert [p.name for p in policies] == [c.name for c in rp.CHECKS]
    assert all(isinstance(p, pp.ResourceValidationPolicy) for p in policies)
    assert {p.enforcement_level for p in policies} == {pp.EnforcementLevel.MANDATORY}


def test_validation_reads_proxied_inputs_and_options() -> None:
    pp = _pulumi_policy()
    import policy_pack
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

    by_name = {p.name: p for p in policy_pack.policies(CTX)}
    inputs = ecr_repository(name=UNKNOWN_STRING_VALUE, forceDelete=True)

    def validate(policy: str, props: dict, protect: bool = False) -> list[str]:
        reported: list[str] = []
        opts = pp.PolicyResourceOptions(protect, [], None, [], pp.PolicyCustomTimeouts(0, 0, 0), [], None)
        args = pp.ResourceValidationArgs(ECR, unknown_checking_proxy(props), "urn:x", "repo", opts, None)
        by_name[policy].validate(args, lambda message, urn=None: reported.append(message))
        return reported

    assert policy_pack.plain(unknown_checking_proxy(inputs))["name"] is rp.UNKNOWN
    assert validate("ecr-immutable-scanned-encrypted", inputs) == []
    assert any("options.protect" in m for m in validate("retained-on-delete", inputs, protect=True))
    assert any("forceDelete" in m for m in validate("retained-on-delete", inputs))


def test_stack_context_reads_the_engines_config() -> None:
    _pulumi_policy()
    import policy_pack

    env = {"PULUMI_CONFIG": json.dumps(pulumi_config("live")), "PULUMI_PROJECT": PROJECT}
    assert policy_pack.stack_context(env) == rp.context_from_config(pulumi_config("live"))
    assert policy_pack.stack_context({}).buildkit_image is None


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    """The pack as the engine runs it (`python policy/`), for stack dev, and a gRPC stub to it."""
    _pulumi_policy()
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    env = dict(os.environ, PULUMI_CONFIG=json.dumps(pulumi_config("dev")), PULUMI_PROJECT=PROJECT,
               PULUMI_STACK="dev", PULUMI_DRY_RUN="true")
    proc = subprocess.Popen([sys.executable, str(POLICY)], cwd=POLICY, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _analyze(stub: Any, resource_type: str, inputs: dict, protect: bool = False) -> list[Any]:
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2

    props = struct_pb2.Struct()
    props.update(inputs)
    request = analyzer_pb2.AnalyzeRequest(
        type=resource_type, properties=props, urn=f"urn:pulumi:dev::release-pipeline::{resource_type}::x",
        name="x", options=analyzer_pb2.AnalyzerResourceOptions(protect=protect),
    )
    return list(stub.Analyze(request).diagnostics)


def test_analyzer_process_passes_the_rendered_stack(analyzer: Any, render_stack: Any) -> None:
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2

    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert [p.name for p in info.policies] == [c.name for c in rp.CHECKS]
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}
    resources, _ = render_stack("dev")
    found = [
        (r["name"], d.policyName, d.message)
        for r in resources
        for d in _analyze(analyzer, r["type"], r["inputs"], r["options"]["protect"])
    ]
    assert found == []


def test_analyzer_process_blocks_a_violation(analyzer: Any) -> None:
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    # Numbers arrive as floats over gRPC: uid 0 is still caught.
    bad = _with(build_template(), "spec.securityContext.runAsUser", 0)
    diagnostics = _analyze(analyzer, WORKFLOW_TEMPLATE, bad)
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [("restricted-pods", analyzer_pb2.MANDATORY)]
    assert "spec.securityContext.runAsUser" in diagnostics[0].message
    # A value unknown during preview is no violation, and no advisory "cannot run" either.
    preview = _with(build_template(namespace="argo"), "metadata.namespace", UNKNOWN_STRING_VALUE)
    assert _analyze(analyzer, WORKFLOW_TEMPLATE, preview) == []
    # The engine's options: protect is seen.
    protected = _analyze(analyzer, ECR, ecr_repository(), protect=True)
    assert [d.policyName for d in protected] == ["retained-on-delete"]

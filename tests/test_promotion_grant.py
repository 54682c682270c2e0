"""Build once, promote many across accounts: the upstream stack grants its downstream siblings pull.

A stack whose `promoteFrom` names an upstream environment in another account pulls the
upstream images through an ECR-to-ECR pull-through cache rule (`PromotionCache`); the
upstream stack, reading the sibling stack files, puts a repository policy on each of
its repositories of a service both environments deploy (`promotion_downstreams`,
`upstream_registry_policy`). Here:
- the pure builders: the exact policy document, and who qualifies (another account
  only, `promoteFrom` resolving to this stack's registry, services deployed in both);
- the cross-stack rule: a `promoteFrom` that does not resolve to its upstream stack's
  account, region and repository prefix is reported by `check`, by the render and by
  the program of either stack, with the file, the field and the value it must have;
- the real program rendered for a copy of the project whose stack files promote: the
  exact `RepositoryPolicy` resources of the upstream stack, none elsewhere, nothing
  else changed, byte-identical twice, Kubernetes objects valid, every policy passed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import (
    STACKS,
    Service,
    Settings,
    load_stack_settings,
    sibling_settings,
    sibling_stack_problems,
    validate_all,
)
from components.registry import (
    UPSTREAM_GRANT_ACTIONS,
    PromotionDownstream,
    promotion_downstreams,
    upstream_registry_policy,
)
from tests.conftest import ROOT, SERVICES_FILE, copy_project, run_render_cli
from tests.samples import vbsiv

REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
INTEGRATION_ACCOUNT = "111111111111"  # Pulumi.integration.yaml (also dev's and sandbox's)
LIVE_ACCOUNT = "222222222222"  # Pulumi.live.yaml
SANDBOX_ACCOUNT = "333333333333"  # moved to an account of its own below
# Exactly the upstream side of AWS's cross-account ECR to ECR pull through cache.
# Ref: https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-private.html
DOCUMENTED_ACTIONS = [
    "ecr:BatchGetImage",
    "ecr:BatchImportUpstreamImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:GetImageCopyStatus",
]


def _statement(environment: str, account: str) -> dict[str, Any]:
    return {
        "Sid": f"PromoteTo{environment.capitalize()}",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": DOCUMENTED_ACTIONS,
    }


# ------------------------------------------------------------------ pure builders


def test_the_grant_is_exactly_the_documented_one() -> None:
    assert sorted(UPSTREAM_GRANT_ACTIONS) == DOCUMENTED_ACTIONS
    policy = upstream_registry_policy([PromotionDownstream("live", LIVE_ACCOUNT)])
    assert policy == {"Version": "2012-10-17", "Statement": [_statement("live", LIVE_ACCOUNT)]}


def test_one_statement_per_downstream_stack_in_the_given_order() -> None:
    policy = upstream_registry_policy(
        [PromotionDownstream("live", LIVE_ACCOUNT), PromotionDownstream("sandbox", SANDBOX_ACCOUNT)]
    )
    assert policy["Statement"] == [_statement("live", LIVE_ACCOUNT), _statement("sandbox", SANDBOX_ACCOUNT)]
    for statement in policy["Statement"]:
        # A repository policy applies to its own repository: no Resource, no wildcard anywhere.
        assert "Resource" not in statement and "NotPrincipal" not in statement
        assert not any("*" in a for a in statement["Action"])
        assert "*" not in json.dumps(statement["Principal"])


def test_no_grant_without_a_downstream() -> None:
    with pytest.raises(ValueError, match="no downstream"):
        upstream_registry_policy([])


def _settings(stack: str, **changes: Any) -> Settings:
    """A shipped stack's settings with top-level fields replaced (camelCase), validated again."""
    data = load_stack_settings(ROOT, stack).model_dump(by_alias=True, exclude_none=True)
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value}
    return Settings.model_validate(data)


def _service(environments: list[str] | None = None) -> Service:
    return vbsiv() if environments is None else vbsiv(environments=environments)


INTEGRATION = load_stack_settings(ROOT, "integration")
LIVE_FROM_INTEGRATION = _settings("live", promoteFrom={"environment": "integration", "accountId": INTEGRATION_ACCOUNT})


def test_a_sibling_in_another_account_is_granted() -> None:
    assert promotion_downstreams(INTEGRATION, {"live": LIVE_FROM_INTEGRATION}, _service()) == (
        PromotionDownstream("live", LIVE_ACCOUNT),
    )


@pytest.mark.parametrize(
    ("sibling", "why"),
    [
        (load_stack_settings(ROOT, "live"), "no promoteFrom"),
        (_settings("live", promoteFrom={"environment": "sandbox", "accountId": INTEGRATION_ACCOUNT}),
         "promotes from another environment"),
        (_settings("live", promoteFrom={"environment": "integration"}), "resolves to its own account"),
        (_settings("live", promoteFrom={"environment": "integration", "accountId": INTEGRATION_ACCOUNT,
                                        "region": "eu-west-1"}), "resolves to another region"),
        (_settings("live", promoteFrom={"environment": "integration", "accountId": INTEGRATION_ACCOUNT,
                                        "repositoryPrefix": "int"}), "resolves to another prefix"),
        (_settings("sandbox", promoteFrom={"environment": "integration"}), "same account and region"),
        (_settings("sandbox", aws={"region": "eu-west-1"},
                   promoteFrom={"environment": "integration", "region": "us-east-1"}),
         "same account, another region: the cache rule's role suffices (AWS)"),
    ],
    ids=["off", "other-upstream", "mismatch-account", "mismatch-region", "mismatch-prefix", "same-registry",
         "same-account-other-region"],
)
def test_no_grant_for(sibling: Settings, why: str) -> None:
    assert promotion_downstreams(INTEGRATION, {sibling.environment: sibling}, _service()) == (), why


def test_no_grant_for_a_service_the_downstream_does_not_deploy() -> None:
    siblings = {"live": LIVE_FROM_INTEGRATION}
    assert promotion_downstreams(INTEGRATION, siblings, _service(["dev", "sandbox", "integration"])) == ()
    assert promotion_downstreams(INTEGRATION, siblings, _service(["integration", "live"])) != ()


def test_the_grant_follows_the_upstream_stacks_own_prefix() -> None:
    integration = _settings("integration", ecr={"repositoryPrefix": "int"})
    live = _settings("live", promoteFrom={"environment": "integration", "accountId": INTEGRATION_ACCOUNT,
                                          "repositoryPrefix": "int"})
    granted = promotion_downstreams(integration, {"live": live}, _service())
    assert granted == (PromotionDownstream("live", LIVE_ACCOUNT),)
    assert promotion_downstreams(integration, {"live": LIVE_FROM_INTEGRATION}, _service()) == ()


# ------------------------------------------------------- copies of the project


def _copy_project(root: Path) -> Path:
    return copy_project(root, "Pulumi.yaml", "__main__.py")


def _edit_settings(project: Path, stack: str, **changes: Any) -> None:
    """Set top-level fields of a stack file's settings object, each as one line of flow YAML."""
    path = project / f"Pulumi.{stack}.yaml"
    text = path.read_text(encoding="utf-8")
    for key, value in changes.items():
        line = f"    {key}: {json.dumps(value)}\n"
        if f"\n    {key}:\n" in text:  # a block mapping the shipped file has: replace it
            start = text.index(f"\n    {key}:\n") + 1
            end = start + len(f"    {key}:\n")
            while text[end:].startswith("      "):
                end = text.index("\n", end) + 1
            text = text[:start] + line + text[end:]
        else:
            at = text.index("\n    aws:") + 1
            text = text[:at] + line + text[at:]
    path.write_text(text, encoding="utf-8")


def _services_text(labeling_api_environments: list[str]) -> str:
    data = yaml.safe_load(SERVICES_FILE.read_text(encoding="utf-8"))
    for service in data["services"]:
        if service["name"] == "labeling-api":
            service["environments"] = labeling_api_environments
    return yaml.safe_dump(data, sort_keys=False)


LABELING_API_ENVIRONMENTS = ["dev", "sandbox", "integration"]  # not live


def _promoting_project(root: Path) -> Path:
    """live (another account) and sandbox (moved to an account of its own) promote from
    integration; dev promotes from it too, from the same account in another region."""
    project = _copy_project(root)
    _edit_settings(project, "live", promoteFrom={"environment": "integration", "accountId": INTEGRATION_ACCOUNT})
    _edit_settings(project, "sandbox", aws={"region": "us-east-1", "accountId": SANDBOX_ACCOUNT},
                   promoteFrom={"environment": "integration", "accountId": INTEGRATION_ACCOUNT})
    _edit_settings(project, "dev", aws={"region": "eu-west-1", "accountId": INTEGRATION_ACCOUNT},
                   promoteFrom={"environment": "integration", "region": "us-east-1"})
    (project / "services.yaml").write_text(_services_text(LABELING_API_ENVIRONMENTS), encoding="utf-8")
    return project


def run_check(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "components", "check", "--project-dir", str(project)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )


def _render(project: Path, out: Path, stack: str = "all") -> subprocess.CompletedProcess[str]:
    return run_render_cli("--stack", stack, "--out", str(out), "--project-dir", str(project))


def _read(out: Path, stack: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from components.render.output import read_stack

    return read_stack(out / stack)


@pytest.fixture(scope="module")
def promoting(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(project, out): the promoting project, all four stacks rendered."""
    base = tmp_path_factory.mktemp("promoting")
    project = _promoting_project(base / "project")
    proc = _render(project, base / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return project, base / "out"


def test_the_promoting_project_is_valid(promoting: tuple[Path, Path]) -> None:
    project, _ = promoting
    proc = run_check(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    settings = {s: load_stack_settings(project, s) for s in STACKS}
    assert not settings["live"].promote_same_registry and not settings["sandbox"].promote_same_registry
    assert not settings["dev"].promote_same_registry  # another region: a cache rule, but no grant


def _grants(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in resources if r["type"] == REPOSITORY_POLICY}


def test_integration_grants_exactly_its_downstream_accounts(promoting: tuple[Path, Path]) -> None:
    _, out = promoting
    resources, _ = _read(out, "integration")
    grants = _grants(resources)
    assert sorted(grants) == ["labeling-api-promotion-grant", "vbsiv-promotion-grant"]

    vbsiv = grants["vbsiv-promotion-grant"]
    assert vbsiv["parent"] == "vbsiv"  # the service's ServiceRegistry, beside its repository
    assert vbsiv["inputs"]["repository"] == "integration/datacollect-vbsiv"
    assert json.loads(vbsiv["inputs"]["policy"]) == {
        "Version": "2012-10-17",
        "Statement": [_statement("live", LIVE_ACCOUNT), _statement("sandbox", SANDBOX_ACCOUNT)],
    }
    assert vbsiv["options"] == {"protect": False, "retain_on_delete": False, "depends_on": ["vbsiv-repository"],
                                "ignore_changes": []}

    # labeling-api is not deployed in live: only sandbox may pull it. dev (same account,
    # another region) is granted nothing anywhere.
    labeling = grants["labeling-api-promotion-grant"]
    assert labeling["inputs"]["repository"] == "integration/datacollect-labeling-api"
    assert json.loads(labeling["inputs"]["policy"])["Statement"] == [_statement("sandbox", SANDBOX_ACCOUNT)]
    assert INTEGRATION_ACCOUNT not in json.dumps([g["inputs"] for g in grants.values()])

    # Repository policies only: the account-wide registry policy is left alone.
    assert not [r for r in resources if r["type"] == "aws:ecr/registryPolicy:RegistryPolicy"]


@pytest.mark.parametrize("stack", ["dev", "sandbox", "live"])
def test_downstream_stacks_grant_nothing(promoting: tuple[Path, Path], stack: str) -> None:
    _, out = promoting
    resources, _ = _read(out, stack)
    assert _grants(resources) == {}
    caches = [r for r in resources if r["type"] == "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"]
    assert len(caches) == 1  # each of them pulls through its own cache rule


def test_the_grant_changes_nothing_else(promoting: tuple[Path, Path], render_stack: Any) -> None:
    """The upstream stack with grants is the same stack plus the grants: same manifests too."""
    _, out = promoting
    resources, manifests = _read(out, "integration")
    plain_resources, plain_manifests = render_stack("integration", _services_text(LABELING_API_ENVIRONMENTS))
    assert [r for r in resources if r["type"] != REPOSITORY_POLICY] == plain_resources
    assert manifests == plain_manifests


def test_the_shipped_stacks_grant_nothing(render_stack: Any) -> None:
    # No promoteFrom anywhere in the shipped files: no repository policy in any stack.
    assert all(load_stack_settings(ROOT, s).promote_from is None for s in STACKS)
    for stack in STACKS:
        resources, _ = render_stack(stack)
        assert _grants(resources) == {}, stack


def test_the_render_with_grants_is_deterministic(promoting: tuple[Path, Path], tmp_path: Path) -> None:
    project, out = promoting
    proc = _render(project, tmp_path / "again", "integration")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("resources.json", "manifests.yaml"):
        assert (tmp_path / "again" / "integration" / name).read_bytes() == (out / "integration" / name).read_bytes()


def test_every_rendered_resource_passes_every_policy(promoting: tuple[Path, Path]) -> None:
    if str(ROOT / "policy") not in sys.path:
        sys.path.insert(0, str(ROOT / "policy"))
    import release_policies as rp

    project, out = promoting
    for stack in STACKS:
        resources, _ = _read(out, stack)
        config = yaml.safe_load((project / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))["config"]
        context = rp.context_from_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
        found = {r["name"]: v for r in resources if (v := rp.violations(r["type"], r["inputs"], r["options"], context))}
        assert found == {}, stack
    # Not vacuous: the grant is one of the resources judged, and a '*' principal in it fails.
    grant = _grants(_read(out, "integration")[0])["vbsiv-promotion-grant"]
    opened = json.loads(grant["inputs"]["policy"])
    opened["Statement"][0]["Principal"] = {"AWS": "*"}
    assert "ecr-grants-name-principals" in rp.violations(REPOSITORY_POLICY, {"policy": json.dumps(opened)}, {})


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_objects_validate_against_the_schemas(promoting: tuple[Path, Path], stack: str,
                                                       upstream_judge: Any) -> None:
    _, out = promoting
    _, manifests = _read(out, stack)
    assert manifests
    assert upstream_judge.errors(manifests) == []


# ------------------------------------------------- a promoteFrom that does not match


@pytest.mark.parametrize(
    ("edits", "field", "message"),
    [
        ({"live": {"promoteFrom": {"environment": "integration"}}}, "promoteFrom.accountId",
         "not set, so this stack's own account '222222222222', but stack 'integration' keeps its ECR "
         "repositories in account '111111111111' (aws.accountId in Pulumi.integration.yaml); "
         "set promoteFrom.accountId to '111111111111'"),
        ({"live": {"promoteFrom": {"environment": "integration", "accountId": INTEGRATION_ACCOUNT,
                                   "region": "eu-west-1"}}}, "promoteFrom.region",
         "is 'eu-west-1', but stack 'integration' keeps its ECR repositories in region 'us-east-1' "
         "(aws.region in Pulumi.integration.yaml); set promoteFrom.region to 'us-east-1'"),
        ({"live": {"promoteFrom": {"environment": "integration", "accountId": INTEGRATION_ACCOUNT,
                                   "repositoryPrefix": "int"}}}, "promoteFrom.repositoryPrefix",
         "is 'int', but stack 'integration' keeps its ECR repositories under the prefix 'integration' "
         "(ecr.repositoryPrefix in Pulumi.integration.yaml); set promoteFrom.repositoryPrefix to 'integration'"),
        ({"integration": {"ecr": {"repositoryPrefix": "int"}},
          "live": {"promoteFrom": {"environment": "integration", "accountId": INTEGRATION_ACCOUNT}}},
         "promoteFrom.repositoryPrefix",
         "not set, so the upstream environment's name 'integration', but stack 'integration' keeps its ECR "
         "repositories under the prefix 'int' (ecr.repositoryPrefix in Pulumi.integration.yaml); "
         "set promoteFrom.repositoryPrefix to 'int'"),
        ({"integration": {"ecr": {"repositoryPrefix": ""}},
          "live": {"promoteFrom": {"environment": "integration", "accountId": INTEGRATION_ACCOUNT}}},
         "promoteFrom.repositoryPrefix",
         "not set, so the upstream environment's name 'integration', but stack 'integration' keeps its ECR "
         "repositories at the top level (no prefix) (ecr.repositoryPrefix in Pulumi.integration.yaml); "
         "promoteFrom needs the upstream's repositories under a prefix: set ecr.repositoryPrefix in "
         "Pulumi.integration.yaml"),
    ],
    ids=["account-defaulted", "region", "prefix", "prefix-defaulted", "upstream-without-prefix"],
)
def test_a_mismatched_promote_from_is_reported_everywhere(
    tmp_path: Path, edits: dict[str, dict[str, Any]], field: str, message: str
) -> None:
    project = _copy_project(tmp_path / "project")
    for stack, changes in edits.items():
        _edit_settings(project, stack, **changes)
    live_file = project / "Pulumi.live.yaml"

    # components.config: one problem, in the downstream stack's file, naming the field.
    [problem] = validate_all(STACKS, project / "services.yaml", project)
    assert (problem.file, problem.where, problem.field, problem.message) == (str(live_file), "settings", field, message)
    # `pulumi up` of either stack sees it through the sibling files, and of no other.
    settings = {s: load_stack_settings(project, s) for s in STACKS}
    for stack in STACKS:
        found = sibling_stack_problems(settings[stack], stack, project)
        assert found == ([problem] if stack in ("integration", "live") else []), stack
    # ...and the upstream stack grants nothing to a downstream that does not match.
    siblings = sibling_settings("integration", project)
    assert promotion_downstreams(settings["integration"], siblings, _service()) == ()

    # `python -m components check`: exit 2, the problem on its own line, no traceback.
    proc = run_check(project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if field in line]
    assert len(lines) == 1 and lines[0].startswith(f"{live_file}:") and lines[0].endswith(f"{field}: {message}")

    # The render of either stack: exit 2, the problem, no traceback, nothing written.
    for stack in ("integration", "live"):
        out = tmp_path / f"out-{stack}"
        proc = _render(project, out, stack)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
        assert f"{field}: {message}" in proc.stderr
        assert not (out / stack).exists()


def test_an_unparsable_sibling_grants_nothing_and_is_not_this_stacks_problem(tmp_path: Path) -> None:
    project = _copy_project(tmp_path / "project")
    _edit_settings(project, "live", promoteFrom={"environment": "integration", "accountId": INTEGRATION_ACCOUNT},
                   colour="red")
    siblings = sibling_settings("integration", project)
    assert "live" not in siblings and set(siblings) == {"dev", "sandbox"}
    integration = load_stack_settings(project, "integration")
    assert sibling_stack_problems(integration, "integration", project) == []

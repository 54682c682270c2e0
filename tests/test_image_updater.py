"""Argo CD Image Updater: opt-in per service, off by default, one write-back path with promote.

Three kinds of tests:
- pure: the settings model, the ImageUpdater manifest, the IAM policies, the chart values;
- the real program through the `render_stack` fixture: nothing of the image updater
  without an opted-in service; with some, the CRD, release, role, Secret and objects,
  in order, valid against the upstream schema;
- the IRSA path (no stack file uses it) on the components under stock Pulumi mocks.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime.mocks import MockResourceArgs
from pydantic import ValidationError

from components import delivery
from components import helm_values as hv
from components import image_updater as iu
from components.config import (
    STACKS,
    Irsa,
    SemverTagPolicy,
    Service,
    ShaTagPolicy,
    load_services,
    load_stack_settings,
)
from components.crds import crd_files, platform_charts
from components.platform import ArgoPlatform, ArgoPlatformArgs
from components.versions import ARGO_HELM_REPO, ARGOCD_IMAGE_UPDATER
from tests.conftest import ROOT, SERVICES_FILE, UPSTREAM, RenderStack
from tests.harness import EchoMocks, password_result, run_under_mocks
from tests.samples import vbsiv

CHART = ARGOCD_IMAGE_UPDATER.chart
CR_TYPE = "kubernetes:argocd-image-updater.argoproj.io/v1alpha1:ImageUpdater"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
SHA = "0123456789abcdef0123456789abcdef01234567"

# Two opted-in services (sha and semver, one with its own tag key and values file)
# and one that is not.
OPTED_IN = """\
services:
  - name: vbsiv
    repo: Appen/sid_verification_backend_api
    imageRepository: datacollect-vbsiv
    namespace: datacollect
    project: datacollect
    helm:
      repo: Appen-International/datacollect-helm
      path: app/vbsiv
    imageUpdater:
      enabled: true
  - name: labeling-api
    repo: Appen/datacollect-platform
    path: services/labeling-api
    imageRepository: datacollect-labeling-api
    namespace: datacollect
    project: datacollect
    helm:
      repo: Appen-International/datacollect-helm
      path: app/labeling-api
      valuesFile: values-eu.yaml
      imageTagKey: app.image.tag
    imageUpdater:
      enabled: true
      tagPolicy: {kind: semver, constraint: "1.2.x"}
  - name: plain
    repo: Appen/plain
    imageRepository: datacollect-plain
    namespace: datacollect
    project: datacollect
    helm:
      repo: Appen-International/datacollect-helm
      path: app/plain
    imageUpdater:
      enabled: false
"""


def service(**changes: Any) -> Service:
    return vbsiv(**({"imageUpdater": {"enabled": True}} | changes))


def opted_in_services() -> list[Service]:
    return [Service.model_validate(s) for s in yaml.safe_load(OPTED_IN)["services"]]


def _image_updater_things(resources: list[dict[str, Any]]) -> list[str]:
    """Every resource that belongs to the image updater, by any of its marks."""
    found = []
    for r in resources:
        text = json.dumps(r)
        if (
            r["type"] == CR_TYPE
            or r["type"].startswith("release-pipeline:components:ImageUpdater")
            or (r["type"] == RELEASE_TYPE and r["inputs"]["chart"] == CHART)
            or "image-updater" in r["name"]
            or "argocd-image-updater" in text
        ):
            found.append(r["name"])
    return found


# --- settings -------------------------------------------------------------------------------


def test_off_by_default_with_the_sha_policy() -> None:
    s = service(imageUpdater={})
    assert s.image_updater.enabled is False
    assert s.image_updater.tag_policy == ShaTagPolicy()
    plain = Service.model_validate({k: v for k, v in service().model_dump(by_alias=True).items()
                                    if k != "imageUpdater"})
    assert plain.image_updater.enabled is False


def test_semver_policy_needs_a_single_term_constraint() -> None:
    s = service(imageUpdater={"enabled": True, "tagPolicy": {"kind": "semver", "constraint": "~1.2"}})
    assert s.image_updater.tag_policy == SemverTagPolicy(kind="semver", constraint="~1.2")
    for bad in ({"kind": "semver"}, {"kind": "semver", "constraint": ">=1, <2"},
                {"kind": "semver", "constraint": "1.2 || 2"}, {"kind": "latest"}):
        with pytest.raises(ValidationError):
            service(imageUpdater={"enabled": True, "tagPolicy": bad})
    with pytest.raises(ValidationError):
        service(imageUpdater={"enabled": True, "strategy": "newest-build"})  # unknown field


def test_image_name_key_defaults_beside_the_tag_key_and_must_differ_from_it() -> None:
    assert service().image_name_key == "image.repository"
    nested = service(helm={"repo": "a/b", "path": "p", "imageTagKey": "app.image.tag"})
    assert nested.image_name_key == "app.image.repository"
    assert service(helm={"repo": "a/b", "path": "p", "imageTagKey": "tag"}).image_name_key == "repository"
    own = service(imageUpdater={"enabled": True, "imageNameKey": "img.repo"})
    assert own.image_name_key == "img.repo"
    with pytest.raises(ValidationError, match="must differ"):
        service(imageUpdater={"enabled": True, "imageNameKey": "image.tag"})


def test_the_services_file_stays_off() -> None:
    for s in load_services(SERVICES_FILE).services:
        assert s.image_updater.enabled is False, s.name


# --- the ImageUpdater object ---------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_write_back_goes_to_the_file_key_and_branch_promote_edits(stack: str) -> None:
    settings = load_stack_settings(ROOT, stack)
    for s in opted_in_services()[:2]:
        url = f"111111111111.dkr.ecr.us-east-1.amazonaws.com/{stack}/{s.image_repository}"
        spec = iu.image_updater_manifest(s, settings, url)["spec"]
        (ref,) = spec["applicationRefs"]
        (image,) = ref["images"]
        config = ref["writeBackConfig"]
        # promote.py gets VALUES_FILE = values_path_in_repo and KEY = helm.image_tag_key.
        assert config["gitConfig"]["writeBackTarget"] == "helmvalues:/" + delivery.values_path_in_repo(s, settings)
        assert image["manifestTargets"]["helm"]["tag"] == s.helm.image_tag_key
        assert image["manifestTargets"]["helm"]["name"] == s.image_name_key
        assert config["gitConfig"]["branch"] == settings.helm_branch
        assert config["gitConfig"]["repository"] == f"https://github.com/{s.helm.repo}.git"
        assert config["method"] == f"git:secret:{settings.namespaces.argocd}/{iu.GIT_SECRET_NAME}"
        # It matches exactly the service's Application, in the Application's namespace.
        application = delivery.application_manifest(s, settings)
        assert ref["namePattern"] == application["metadata"]["name"]
        assert not set(ref["namePattern"]) & set("*?[]")
        assert iu.image_updater_manifest(s, settings, url)["metadata"]["namespace"] == (
            application["metadata"]["namespace"]
        )
        assert image["imageName"].startswith(url)


def test_sha_policy_takes_only_full_shas_newest_build_first() -> None:
    settings = load_stack_settings(ROOT, "dev")
    image = iu.image_updater_manifest(service(), settings, "r")["spec"]["applicationRefs"][0]["images"][0]
    assert image["imageName"] == "r"
    update = image["commonUpdateSettings"]
    assert update["updateStrategy"] == "newest-build"
    pattern = update["allowTags"].removeprefix("regexp:")
    assert update["allowTags"].startswith("regexp:")
    assert re.search(pattern, SHA)
    for tag in (SHA[:7], SHA.upper(), SHA + "0", "buildcache", "latest", "v1.2.3", f"{SHA}-dirty"):
        assert not re.search(pattern, tag), tag


def test_semver_policy_puts_the_constraint_on_the_image() -> None:
    settings = load_stack_settings(ROOT, "dev")
    s = service(imageUpdater={"enabled": True, "tagPolicy": {"kind": "semver", "constraint": "1.2.x"}})
    image = iu.image_updater_manifest(s, settings, "r")["spec"]["applicationRefs"][0]["images"][0]
    assert image["imageName"] == "r:1.2.x"
    assert image["commonUpdateSettings"] == {"updateStrategy": "semver"}


def test_no_manifest_for_a_service_that_did_not_opt_in() -> None:
    with pytest.raises(ValueError, match="does not opt in"):
        iu.image_updater_manifest(service(imageUpdater={}), load_stack_settings(ROOT, "dev"), "r")
    assert [s.name for s in iu.opted_in(opted_in_services())] == ["labeling-api", "vbsiv"]


def test_objects_validate_against_the_upstream_schema(upstream_judge: Any) -> None:
    settings = load_stack_settings(ROOT, "live")
    objects = [iu.image_updater_manifest(s, settings, "111111111111.dkr.ecr.us-east-1.amazonaws.com/x")
               for s in iu.opted_in(opted_in_services())]
    assert upstream_judge.errors(objects) == []
    assert upstream_judge.skipped == set()  # the pinned ImageUpdater CRD judged every one


def test_only_fields_the_deployed_v1_2_2_knows() -> None:
    """VERSIONS.md: v1.3.0 added `imagesVerification` and `manifestTargets.plugin`."""
    settings = load_stack_settings(ROOT, "dev")
    text = json.dumps([iu.image_updater_manifest(s, settings, "r") for s in iu.opted_in(opted_in_services())])
    assert "imagesVerification" not in text
    assert '"plugin"' not in text
    assert "useAnnotations" not in text


# --- IAM -----------------------------------------------------------------------------------------


def test_read_policy_is_login_plus_reads_of_exactly_the_given_repositories() -> None:
    arns = ["arn:aws:ecr:us-east-1:1:repository/dev/b", "arn:aws:ecr:us-east-1:1:repository/dev/a"]
    login, read = iu.read_policy(arns)["Statement"]
    assert login == {"Sid": "RegistryLogin", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"],
                     "Resource": "*"}
    assert read["Resource"] == sorted(arns)
    assert set(read["Action"]) == {"ecr:BatchGetImage", "ecr:DescribeImages", "ecr:GetDownloadUrlForLayer",
                                   "ecr:ListImages"}
    assert not any(a.startswith(("ecr:Put", "ecr:Delete", "ecr:Upload", "ecr:Initiate", "ecr:Complete",
                                 "ecr:BatchDelete")) or "*" in a for a in read["Action"])
    with pytest.raises(ValueError):
        iu.read_policy([])


def test_trust_policy_names_the_charts_service_account_in_the_argocd_namespace() -> None:
    settings = load_stack_settings(ROOT, "dev")
    (pod,) = iu.image_updater_trust_policy(settings, "argocd")["Statement"]
    assert pod["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-service-account"] == (
        hv.IMAGE_UPDATER_SERVICE_ACCOUNT
    )
    assert pod["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-namespace"] == "argocd"
    irsa = settings.model_copy(update={"identity": Irsa(
        mode="irsa", oidc_provider_arn="arn:aws:iam::111111111111:oidc-provider/oidc.eks.x/id/ABC")})
    (web,) = iu.image_updater_trust_policy(irsa, "argocd")["Statement"]
    assert web["Condition"]["StringEquals"]["oidc.eks.x/id/ABC:sub"] == (
        f"system:serviceaccount:argocd:{hv.IMAGE_UPDATER_SERVICE_ACCOUNT}"
    )


# --- chart values --------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_values_keys_are_known_to_the_chart(stack: str) -> None:
    from tests.checks.check_helm_values import problems

    assert problems(UPSTREAM / "charts" / CHART, hv.image_updater_values(load_stack_settings(ROOT, stack))) == []


def test_values_log_in_to_this_stacks_ecr_with_the_pods_identity_and_install_no_crds() -> None:
    settings = load_stack_settings(ROOT, "dev")
    values = hv.image_updater_values(settings)
    assert values["crds"]["install"] is False
    assert values["replicaCount"] == 1
    assert values["serviceAccount"] == {"create": True, "name": hv.IMAGE_UPDATER_SERVICE_ACCOUNT}
    (registry,) = values["config"]["registries"]
    host = f"{settings.aws.account_id}.dkr.ecr.{settings.aws.region}.amazonaws.com"
    assert registry["prefix"] == host and registry["api_url"] == f"https://{host}"
    assert registry["credentials"] == f"ext:/scripts/{hv.ECR_LOGIN_SCRIPT}"
    assert registry["credsexpire"] == "11h"  # ECR tokens last 12h
    assert values["authScripts"]["enabled"] is True
    script = values["authScripts"]["scripts"][hv.ECR_LOGIN_SCRIPT]
    assert "aws ecr get-authorization-token" in script and f"--region {settings.aws.region}" in script
    assert "set -eu" in script
    # No stored credentials: no AWS keys, no Secret references, no refresh job.
    text = json.dumps(values)
    for word in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "secret:", "pullsecret:", "CronJob"):
        assert word not in text, word
    assert values["resources"] == hv.resources(settings.sizes.image_updater)


def test_china_regions_use_their_own_ecr_domain() -> None:
    aws = load_stack_settings(ROOT, "dev").aws.model_copy(update={"region": "cn-north-1"})
    assert hv.ecr_registry_host(aws).endswith(".dkr.ecr.cn-north-1.amazonaws.com.cn")


def test_crd_only_in_the_charts_of_a_stack_that_opts_in() -> None:
    assert CHART not in platform_charts()
    assert CHART in platform_charts(image_updater=True)
    assert [f.logical_name for f in crd_files([CHART])] == ["crds-argocd-image-updater-imageupdaters"]
    (file,) = crd_files([CHART])
    assert f"/{ARGOCD_IMAGE_UPDATER.app_version}/" in file.url


# --- the real program ------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_of_the_image_updater_without_an_opted_in_service(render_stack: RenderStack, stack: str) -> None:
    resources, manifests = render_stack(stack)
    assert _image_updater_things(resources) == []
    assert not any(m.get("kind") == "ImageUpdater" for m in manifests)


def test_nothing_of_it_when_every_service_says_enabled_false(render_stack: RenderStack) -> None:
    text = OPTED_IN.replace("enabled: true", "enabled: false")
    resources, _ = render_stack("dev", text)
    assert _image_updater_things(resources) == []


@pytest.fixture
def on(render_stack: RenderStack) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return render_stack("dev", OPTED_IN)


def _named(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in resources}


def test_opted_in_stack_gets_the_pinned_release_after_crd_argocd_identity_and_secret(on: Any) -> None:
    resources, _ = on
    r = _named(resources)
    release = r["platform-argocd-image-updater"]
    inputs = release["inputs"]
    assert inputs["chart"] == CHART and inputs["version"] == ARGOCD_IMAGE_UPDATER.version == "1.2.4"
    assert inputs["repositoryOpts"] == {"repo": ARGO_HELM_REPO}
    assert inputs["namespace"] == "argocd" and inputs["name"] == "argocd-image-updater"
    assert inputs["skipCrds"] is True and inputs["values"]["crds"]["install"] is False
    assert set(release["options"]["depends_on"]) >= {
        "crds-argocd-image-updater-imageupdaters", "platform-argo-cd", "image-updater-read-policy",
        "image-updater-pod-identity", "image-updater-git-secret",
    }
    crd = r["crds-argocd-image-updater-imageupdaters"]
    assert crd["inputs"]["file"] == (
        "https://raw.githubusercontent.com/argoproj-labs/argocd-image-updater/v1.2.2/"
        "config/crd/bases/argocd-image-updater.argoproj.io_imageupdaters.yaml"
    )
    assert crd["options"]["retain_on_delete"] is True and crd["options"]["protect"] is False


def test_rendered_release_values_are_known_to_the_chart(on: Any) -> None:
    from tests.checks.check_helm_values import problems

    resources, _ = on
    values = _named(resources)["platform-argocd-image-updater"]["inputs"]["values"]
    assert problems(UPSTREAM / "charts" / CHART, values) == []


def test_one_object_per_opted_in_service_after_crd_release_and_secret(on: Any) -> None:
    resources, manifests = on
    objects = {r["inputs"]["metadata"]["name"]: r for r in resources if r["type"] == CR_TYPE}
    assert set(objects) == {"vbsiv-dev", "labeling-api-dev"}
    for r in objects.values():
        assert set(r["options"]["depends_on"]) >= {
            "crds-argocd-image-updater-imageupdaters", "platform-argocd-image-updater", "image-updater-git-secret",
        }
    settings = load_stack_settings(ROOT, "dev")
    by_name = {m["metadata"]["name"]: m for m in manifests if m.get("kind") == "ImageUpdater"}
    for s in iu.opted_in(opted_in_services()):
        repository = next(x for x in resources if x["name"] == f"{s.name}-repository")
        url = f"111111111111.dkr.ecr.us-east-1.amazonaws.com/{repository['inputs']['name']}"
        assert by_name[f"{s.name}-dev"] == iu.image_updater_manifest(s, settings, url)


def test_rendered_objects_validate_against_the_schema(on: Any, upstream_judge: Any) -> None:
    _, manifests = on
    assert upstream_judge.errors(manifests) == []


def test_role_reads_exactly_the_opted_in_repositories(on: Any) -> None:
    resources, _ = on
    r = _named(resources)
    statements = json.loads(r["image-updater-read-policy"]["inputs"]["policy"])["Statement"]
    repository_names = {r[f"{s}-repository"]["inputs"]["name"] for s in ("vbsiv", "labeling-api")}
    read = next(st for st in statements if st["Sid"] == "ReadOptedInRepositories")
    assert {arn.rsplit(":repository/", 1)[1] for arn in read["Resource"]} == repository_names
    assert r["plain-repository"]["inputs"]["name"] not in json.dumps(statements)
    association = r["image-updater-pod-identity"]["inputs"]
    assert association["serviceAccount"] == hv.IMAGE_UPDATER_SERVICE_ACCOUNT
    assert association["namespace"] == "argocd"
    assert association["roleArn"].endswith(":role/release-pipeline-dev-argocd-image-updater")


def test_git_credentials_are_this_environments_app_and_its_key_is_secret(on: Any) -> None:
    resources, manifests = on
    secret = _named(resources)["image-updater-git-secret"]["inputs"]
    assert secret["metadata"]["name"] == iu.GIT_SECRET_NAME and secret["metadata"]["namespace"] == "argocd"
    assert set(secret["stringData"]) == {"githubAppID", "githubAppInstallationID", "githubAppPrivateKey"}
    assert secret["stringData"]["githubAppPrivateKey"] == "[secret]"
    assert "data" not in secret
    (manifest,) = [m for m in manifests if m.get("kind") == "Secret" and m["metadata"]["name"] == iu.GIT_SECRET_NAME]
    assert manifest["stringData"]["githubAppPrivateKey"] == "[secret]"
    settings = load_stack_settings(ROOT, "dev")
    assert iu.git_credentials_data(settings.helm_writer) == {
        "githubAppID": str(settings.helm_writer.app_id),
        "githubAppInstallationID": str(settings.helm_writer.installation_id),
    }


# --- IRSA, on the components under stock mocks ------------------------------------------------------


def _role_arn(args: MockResourceArgs) -> dict[str, Any]:
    outputs = password_result(args)
    if args.typ == "aws:iam/role:Role":
        outputs["arn"] = f"arn:aws:iam::111111111111:role/{args.inputs['name']}"
    return outputs


def test_irsa_annotates_the_charts_service_account_and_makes_no_pod_identity_association() -> None:
    recorder = EchoMocks(_role_arn)
    settings = load_stack_settings(ROOT, "dev").model_copy(update={"identity": Irsa(
        mode="irsa", oidc_provider_arn="arn:aws:iam::111111111111:oidc-provider/oidc.eks.x/id/ABC")})

    def program() -> Any:
        access = iu.ImageUpdaterAccess("image-updater", iu.ImageUpdaterAccessArgs(
            settings=settings,
            repository_arns={"vbsiv": "arn:aws:ecr:us-east-1:111111111111:repository/dev/datacollect-vbsiv"},
            argocd_namespace="argocd",
            writer_private_key=pulumi.Output.secret("-----BEGIN RSA PRIVATE KEY-----"),
        ))
        platform = ArgoPlatform("platform", ArgoPlatformArgs(
            settings=settings,
            projects=("datacollect",),
            namespaces={"argocd": "argocd", "workflows": "argo", "events": "argo-events",
                        "rollouts": "argo-rollouts"},
            slack_token=pulumi.Output.secret("xoxb-test"),
            sso_client_secret=pulumi.Output.secret("sso-test"),
            image_updater=access.release,
        ))
        assert platform.depends_for("ImageUpdater") == [
            platform.crds["crds-argocd-image-updater-imageupdaters"], platform.releases[CHART]]
        return access.role_arn

    run_under_mocks(program, recorder)
    assert "image-updater-pod-identity" not in recorder.resources
    values = recorder.resources["platform-argocd-image-updater"].inputs["values"]
    assert values["serviceAccount"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::111111111111:role/release-pipeline-dev-argocd-image-updater"
    }

"""What holds data: `ecr-immutable-scanned-encrypted` and `retained-on-delete`.

Owns: the checks that an ECR repository keeps its images (immutable tags, only the
stack's cache tag excluded), scans them on push and encrypts them, and that the kinds
holding data (ECR repositories, the Argo CRDs, Rollouts) survive a delete.
Does not own: who may pull from or push to a repository (`access`).

Decisions: docs/decisions/0382-retention-judged-on-what-the-engine-shows.md.
"""

from __future__ import annotations

from release_policies.context import Context
from release_policies.inputs import CRD_TYPES, UNKNOWN, Inputs, Options, as_list, get_in, known, truthy

# ----------------------------------------------------------------------- ECR


ECR_REPOSITORY = "aws:ecr/repository:Repository"
ECR_ENCRYPTION = frozenset({"AES256", "KMS", "KMS_DSSE"})


def check_ecr_repository(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """ECR: immutable tags (only the cache tag may move), scan on push, encryption configured."""
    if resource_type != ECR_REPOSITORY:
        return []
    found = []
    mutability = inputs.get("imageTagMutability")
    filters = as_list(inputs.get("imageTagMutabilityExclusionFilters"))
    if mutability == "IMMUTABLE_WITH_EXCLUSION":
        names = [get_in(f, "filter") for f in filters]
        if any(n is UNKNOWN for n in names):
            pass
        elif len(filters) != 1 or names[0] != context.cache_tag:
            found.append(
                "imageTagMutabilityExclusionFilters: only the build cache tag may be mutable: exactly one "
                f"filter {context.cache_tag!r}, no wildcard (found {len(filters)} filter(s))"
            )
    elif mutability != "IMMUTABLE" and known(mutability):
        shown = "unset (MUTABLE)" if mutability is None else repr(mutability)
        found.append(
            f"imageTagMutability: {shown}: must be IMMUTABLE, or IMMUTABLE_WITH_EXCLUSION for the cache tag only"
        )
    scan = get_in(inputs, "imageScanningConfiguration", "scanOnPush")
    if scan is not True and known(scan) and known(inputs.get("imageScanningConfiguration")):
        found.append("imageScanningConfiguration.scanOnPush: must be true")
    encryption = inputs.get("encryptionConfigurations")
    if known(encryption):
        types = [get_in(e, "encryptionType") for e in as_list(encryption)]
        if not types or not all(t is UNKNOWN or t in ECR_ENCRYPTION for t in types):
            found.append(
                f"encryptionConfigurations: must be set, encryptionType one of {', '.join(sorted(ECR_ENCRYPTION))}"
            )
    return found


# ----------------------------------------------------------------- retention


ROLLOUT = "kubernetes:argoproj.io/v1alpha1:Rollout"
CONFIG_FILE_TYPES = frozenset({"kubernetes:yaml/v2:ConfigFile", "kubernetes:yaml:ConfigFile"})


def _is_retained_kind(resource_type: str, inputs: Inputs) -> bool:
    if resource_type in (ECR_REPOSITORY, ROLLOUT) or resource_type in CRD_TYPES:
        return True
    if resource_type in CONFIG_FILE_TYPES:
        file = inputs.get("file")
        return isinstance(file, str) and "crd" in file.lower()
    return False


def check_retained(resource_type: str, inputs: Inputs, options: Options, context: Context) -> list[str]:
    """ECR repositories, Argo CRDs and Rollouts survive `pulumi destroy` and a service's removal.

    Retained with `retain_on_delete`, never `protect` (which makes `pulumi destroy` fail).
    Under Pulumi it checks what the engine shows a policy: `protect` off and the ECR
    repository's `forceDelete` off; where `options` has `retain_on_delete` (the offline
    render), it must be true (docs/decisions/0382-retention-judged-on-what-the-engine-shows.md).
    """
    if not _is_retained_kind(resource_type, inputs):
        return []
    found = []
    if options.get("protect") is True:
        found.append(
            "options.protect: must be false: retain on delete instead, so `pulumi destroy` succeeds and keeps it"
        )
    if "retain_on_delete" in options and options.get("retain_on_delete") is not True:
        found.append("options.retain_on_delete: must be true: this resource holds data and must survive a delete")
    if resource_type == ECR_REPOSITORY and truthy(inputs.get("forceDelete")):
        found.append("forceDelete: must be false: deleting a repository must never delete its images")
    return found

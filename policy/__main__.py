"""The release pipeline's policy pack: docs/security-model.md, "Invariants", mandatory at preview and up.

Run from the project root: `pulumi preview --policy-pack policy` (README). The checks
are in `release_policies/`, their Pulumi wiring in `policy_pack.py`; this file only
starts the analyzer (PolicyPack serves until the engine stops it).
"""

from policy_pack import PACK_NAME, policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=policies(),
)

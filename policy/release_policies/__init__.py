"""The checks of the policy pack: docs/security-model.md, "Invariants", as pure functions over one resource.

Each policy is `check(resource_type, inputs, options, context)` -> violation messages
(empty when the resource complies), over the inputs the engine hands a policy, which are
also what the offline render writes to `resources.json`: the same functions run in
`pulumi preview` and in the tests over every rendered stack. Messages name the field and
what is allowed, never a value that may hold a credential.

Modules: `table` (`CHECKS`, the pack's table, and `violations`); one per topic of
policies: `pods`, `credentials`, `storage`, `access`, `payload`; `inputs` (reading a
resource's inputs, `UNKNOWN`) and `context` (the stack's `Context`). This file only
re-exports what the pack's wiring and the tests use.
Does not own: the Pulumi wiring (`policy_pack.py`); the program's builders (nothing here
imports `components`: the pack judges the program, it does not share its code).

Decisions: docs/decisions/0380-policy-checks-are-pure-functions.md,
docs/decisions/0381-unknown-values-are-left-for-up.md.
"""

from release_policies.context import (
    BUILDKIT_IMAGE_NAME,
    BUILDKIT_IMAGE_VERSION,
    PROJECT,
    SETTINGS_KEY,
    Context,
    context_from_config,
)
from release_policies.inputs import UNKNOWN
from release_policies.payload import (
    ENCODED_ENV_SUFFIX,
    ENCODED_PARAMETERS,
    ENCODED_SENSOR_TEMPLATE,
    PAYLOAD_PARAMETERS,
)
from release_policies.pods import check_restricted_pods
from release_policies.storage import _is_retained_kind  # the render tests show retention is not vacuous
from release_policies.table import CHECKS, Check, violations

__all__ = [
    "BUILDKIT_IMAGE_NAME",
    "BUILDKIT_IMAGE_VERSION",
    "CHECKS",
    "ENCODED_ENV_SUFFIX",
    "ENCODED_PARAMETERS",
    "ENCODED_SENSOR_TEMPLATE",
    "PAYLOAD_PARAMETERS",
    "PROJECT",
    "SETTINGS_KEY",
    "UNKNOWN",
    "Check",
    "Context",
    "_is_retained_kind",
    "check_restricted_pods",
    "context_from_config",
    "violations",
]

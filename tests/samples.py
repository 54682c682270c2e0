"""Sample inputs several test modules share.

``vbsiv``: the `vbsiv` service's required fields as services.yaml has them (no unit
tests, no options), with any field replaced or added by keyword, as the services file
spells it (camelCase).
"""

from __future__ import annotations

from typing import Any

from components.config import Service

VBSIV: dict[str, Any] = {
    "name": "vbsiv",
    "repo": "Appen/sid_verification_backend_api",
    "imageRepository": "datacollect-vbsiv",
    "namespace": "datacollect",
    "project": "datacollect",
    "helm": {"repo": "Appen-International/datacollect-helm", "path": "app/vbsiv"},
}


def vbsiv(**fields: Any) -> Service:
    return Service.model_validate(VBSIV | fields)

"""The tool images the step scripts run in: pins agree with the tested ones, bases are pinned.

The images themselves are built by the platform team (`make images`); here only what
can be checked without a Docker engine.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[a-z,]+\])?==(\S+)", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_release_tools_installs_the_versions_the_tests_use():
    image = pins(IMAGES / "release-tools" / "requirements.txt")
    dev = pins(ROOT / "requirements.txt") | pins(ROOT / "requirements-dev.txt")  # dev installs both
    for name in ("ruamel.yaml", "pyyaml", "pyjwt", "cryptography", "boto3", "botocore"):
        assert image[name] == dev[name], name


def test_every_line_of_the_image_requirements_is_pinned():
    lines = (IMAGES / "release-tools" / "requirements.txt").read_text().splitlines()
    entries = [line for line in lines if line.strip() and not line.startswith("#")]
    assert entries and all("==" in line for line in entries)


def test_base_images_are_pinned_by_tag_and_digest():
    for dockerfile in IMAGES.glob("*/Dockerfile"):
        bases = re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), flags=re.MULTILINE)
        assert bases, dockerfile
        for base in bases:
            assert re.fullmatch(r"[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}", base), f"{dockerfile}: {base}"


def test_images_run_as_uid_1000_and_carry_no_scripts():
    for name in ("release-tools", "buildkit-ecr"):
        text = (IMAGES / name / "Dockerfile").read_text()
        assert re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)[-1] == "1000:1000"
    copies = re.findall(r"^COPY\s+(.*)$", (IMAGES / "release-tools" / "Dockerfile").read_text(), flags=re.MULTILINE)
    assert copies == ["requirements.txt /tmp/requirements.txt"], "the scripts come from a ConfigMap, not the image"


def test_make_images_pushes_both_with_the_pinned_versions():
    makefile = (ROOT / "Makefile").read_text()
    assert "$(call image_ref,RELEASE_TOOLS) images/release-tools" in makefile
    assert "$(call image_ref,BUILDKIT_ECR) images/buildkit-ecr" in makefile

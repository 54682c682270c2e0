"""docs/settings.md, the settings reference generated from the config models.

Owns: the committed file is what the models give today (regenerate and compare), so a
new or changed field cannot land without its reference; every field has a description
and every key an example; types and constraints are said in words taken from the
models; the `settings-reference` command (write, `--check`, exit codes).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import AfterValidator, BaseModel, Field

from components import config
from components import settings_reference as ref
from tests.conftest import ROOT

DOC = ROOT / "docs" / "settings.md"


def _models(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[type[BaseModel]]:
    """``model`` and every model reachable from its fields."""
    seen = set() if seen is None else seen
    if model in seen:
        return seen
    seen.add(model)
    for info in model.model_fields.values():
        for nested in ref._field_shape(info).models:
            _models(nested, seen)
    return seen


ALL_MODELS = sorted(_models(config.Settings) | _models(config.Service), key=lambda m: m.__name__)


def test_the_committed_reference_is_what_the_models_give():
    assert DOC.read_text(encoding="utf-8") == ref.render(), (
        "docs/settings.md is out of date: run `python -m components settings-reference`"
    )


def test_the_check_command_passes_on_the_committed_file_and_fails_on_a_stale_one(tmp_path: Path):
    def check(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "components", "settings-reference", "--check", "--out", str(path)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )

    assert check(DOC).returncode == 0
    stale = tmp_path / "settings.md"
    stale.write_text(DOC.read_text(encoding="utf-8").replace("Default: `200`", "Default: `100`"), encoding="utf-8")
    proc = check(stale)
    assert proc.returncode == 1
    assert "-- Default: `100`" in proc.stderr and "+- Default: `200`" in proc.stderr
    assert "is out of date; run `python -m components settings-reference`" in proc.stderr
    missing = check(tmp_path / "none.md")
    assert missing.returncode == 1 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr


def test_the_command_writes_the_file(tmp_path: Path):
    out = tmp_path / "settings.md"
    proc = subprocess.run(
        [sys.executable, "-m", "components", "settings-reference", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8") == ref.render()


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_every_field_has_a_description_of_one_short_sentence(model: type[BaseModel]):
    for name, info in model.model_fields.items():
        assert info.description, f"{model.__name__}.{name} has no Field(description=...)"
        assert len(info.description) <= 160 and "\n" not in info.description, f"{model.__name__}.{name}"


def test_every_key_has_type_default_and_an_example():
    found = list(ref.entries(config.Settings)) + list(ref.entries(config.Service, "services[]."))
    assert len(found) > 150
    for entry in found:
        assert entry.kind and entry.default, entry.path
        if not entry.nested and not entry.see:
            assert entry.example, f"{entry.path}: no example (add examples=[...] to its Field)"


def test_both_files_are_covered_key_by_key():
    text = DOC.read_text(encoding="utf-8")
    for key in ("cluster.kubeContext", "ingress.uiScheme", "rbac.teamSlugs", "eventBus.version", "analysis.interval",
                "release.newestWins", "metrics.grafanaDashboard.folder", "sizes.argocdController.replicas",
                "argocd.ha", "promoteFrom.cachePrefix"):
        assert f"### `{key}`" in text, key
    for field in ("name", "helm.imageTagKey", "rollout.trafficRouting", "imageUpdater.tagPolicy", "tests.command"):
        assert f"### `services[].{field}`" in text, field


def test_constraints_are_said_in_words_from_the_models():
    class Example(BaseModel):
        level: Literal["low", "high"] = Field(default="low", description="A level.")
        count: int = Field(default=3, ge=1, le=9, description="A count.")
        timeout: Annotated[str, Field(pattern=config.DURATION_PATTERN)] = Field(default="1m", description="A wait.")
        name: Annotated[str, AfterValidator(config._dns_label)] = Field(description="A name.", examples=["web"])
        odd: Annotated[str, Field(pattern=r"^x+$")] = Field(default="x", description="Odd.")

    by_path = {e.path: e for e in ref.entries(Example)}
    assert by_path["level"].kind == "one of `low`, `high`"
    assert by_path["level"].example == "`level: high`"
    assert by_path["count"].allowed == ("at least 1", "at most 9")
    assert by_path["timeout"].allowed == ("a duration in whole seconds, minutes or hours, like 30s, 10m or 2h",)
    assert by_path["name"].allowed[0].startswith("a DNS-1123 label")
    assert by_path["name"].default == "none: required" and by_path["name"].example == "`name: web`"
    assert by_path["odd"].allowed == ("matching the regular expression ^x+$",)


def test_a_validator_without_words_is_refused():
    def _new_rule(value: str) -> str:
        return value

    class Example(BaseModel):
        name: Annotated[str, AfterValidator(_new_rule)] = Field(description="A name.")

    with pytest.raises(KeyError, match="_new_rule has no words"):
        list(ref.entries(Example))


def test_a_mapping_used_twice_is_described_once():
    text = DOC.read_text(encoding="utf-8")
    assert text.count("### `sizes.argocdController.replicas`") == 1
    assert text.count("### `eventBus.resources.requests.cpu`") == 1  # Resources, first met there
    assert "### `sizes.argocdController.resources.requests.cpu`" not in text
    assert "### `sizes.argocdServer.replicas`" not in text
    assert "described under [`sizes.argocdController`](#settings-sizes-argocdcontroller)" in text
    anchors = set(re.findall(r'<a id="([^"]+)">', text))
    assert {m for m in re.findall(r"\]\(#([^)]+)\)", text)} <= anchors | {"stack-settings", "servicesyaml"}


def test_the_readme_and_the_field_table_link_the_reference():
    assert "(docs/settings.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(settings.md#servicesyaml)" in (ROOT / "docs" / "adding-a-service.md").read_text(encoding="utf-8")

"""upstream/: pinned copies of upstream files (components.upstream_data).

Offline: every copy matches upstream/<kind>/SHA256SUMS, and each CRD copy is one of the
files the program installs at `pulumi up` (ChartPin.crd_paths / crd_urls) at the same
version, or at the documented nearest served version. With Go and the module proxy
(CI has both: it builds the tools), the copies are compared with the modules themselves.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import PurePosixPath

import pytest

from components import cli, upstream_data, versions
from components.upstream_data import SUMS, UPSTREAM_DIR

# The only deviations allowed: module versions the Go module proxy does not serve.
DOCUMENTED_DEVIATIONS = {"argo-workflows": ("v4.0.6", "v4.0.5"), "argocd-image-updater": ("v1.2.2", "v1.2.1")}


@pytest.mark.parametrize("kind", sorted(upstream_data.KINDS))
def test_every_copy_matches_its_sha256sum_and_nothing_else_is_there(kind):
    sums = upstream_data.read_sums(kind)
    base = UPSTREAM_DIR / kind
    present = {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()} - {SUMS}
    assert present == set(sums), "files and SHA256SUMS disagree"
    for dest, digest in sums.items():
        assert hashlib.sha256((base / dest).read_bytes()).hexdigest() == digest, f"upstream/{kind}/{dest}"
    expected = {item.dest for item in upstream_data.KINDS[kind]()}
    assert present == expected, "run `python -m components refresh-upstream`"


def test_each_crd_copy_is_a_file_the_program_installs_at_the_same_version():
    sources = {source.chart: source for source in versions.CRD_SOURCES}
    assert set(sources) == {pin.chart for pin in versions.CHARTS}
    header = (UPSTREAM_DIR / "crds" / SUMS).read_text(encoding="utf-8")
    for pin in versions.CHARTS:
        source = sources[pin.chart]
        if source.version != pin.app_version:
            assert DOCUMENTED_DEVIATIONS.get(pin.chart) == (pin.app_version, source.version), pin.chart
            assert source.deviation and "does not serve" in source.deviation
        else:
            assert not source.deviation
        assert f"#   {pin.chart}: {source.module}@{source.version}" in header
        copies = sorted(p.name for p in (UPSTREAM_DIR / "crds" / pin.chart).iterdir())
        assert copies == sorted(PurePosixPath(path).name for path in pin.crd_paths), pin.chart
        for item in (f for f in upstream_data.crd_files() if f.dest.startswith(pin.chart + "/")):
            url = f"/{pin.upstream}/{pin.app_version}/{item.path}"
            assert any(u.endswith(url) for u in pin.crd_urls()), f"{item.dest}: no crd_url ends with {url}"


requires_go = pytest.mark.skipif(
    shutil.which("go") is None, reason="comparing with the modules needs Go and the Go module proxy"
)


@requires_go
def test_the_copies_are_the_modules_files_byte_for_byte(capsys):
    assert cli.main(["refresh-upstream", "--check"]) == 0, capsys.readouterr().out


@requires_go
def test_refresh_finds_and_repairs_an_edited_copy_and_a_stray_file(monkeypatch, tmp_path, capsys):
    copy = tmp_path / "upstream"
    shutil.copytree(UPSTREAM_DIR, copy)
    monkeypatch.setattr(upstream_data, "UPSTREAM_DIR", copy)
    target = copy / "crds" / "argo-cd" / "application-crd.yaml"
    original = target.read_bytes()
    target.write_bytes(original + b"# edited\n")
    (copy / "crds" / "argo-cd" / "extra.yaml").write_text("kind: X\n", encoding="utf-8")

    assert cli.main(["refresh-upstream", "--check"]) == 1
    out = capsys.readouterr().out
    assert "upstream/crds/argo-cd/application-crd.yaml: differs from github.com/argoproj/argo-cd/v3@" in out
    assert "upstream/crds/argo-cd/extra.yaml: not an upstream file of this kind" in out

    assert cli.main(["refresh-upstream"]) == 0
    assert target.read_bytes() == original and not (copy / "crds" / "argo-cd" / "extra.yaml").exists()
    assert upstream_data.refresh(check=True) == []


def test_an_unserved_module_is_a_clear_error(monkeypatch, capsys):
    def refuse(module, version):
        raise upstream_data.UpstreamError(f"{module}@{version}: 403 Forbidden")

    monkeypatch.setattr(upstream_data, "module_dir", refuse)
    assert cli.main(["refresh-upstream", "--check"]) == 2
    assert capsys.readouterr().err.startswith("refresh-upstream: github.com/")

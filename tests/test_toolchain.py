"""components.toolchain: the pinned upstream tools, where they are found and how they are built.

The version pins are checked against tools/*/go.mod; tool_path and build are driven
with fake binaries (shell scripts) and a fake `go`, so these tests need no Go; the last
test checks the real binaries that `make tools` built report their pinned versions.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from components import cli, toolchain, versions
from components.config import EventBusSettings

ROOT = Path(__file__).resolve().parent.parent
TOOLS_DIR = ROOT / "tools"


def _requires(go_mod: Path) -> dict[str, str]:
    """module -> version of every require line (block or single) of a go.mod."""
    text = go_mod.read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for block in re.findall(r"^require \((.*?)^\)", text, flags=re.S | re.M):
        for line in block.splitlines():
            parts = line.split("//")[0].split()
            if len(parts) == 2:
                found[parts[0]] = parts[1]
    for module, version in re.findall(r"^require (\S+) (\S+)", text, flags=re.M):
        found[module] = version
    return found


def _replaces(go_mod: Path) -> dict[str, str]:
    text = go_mod.read_text(encoding="utf-8")
    return dict(re.findall(r"^\s*(?:replace )?(\S+) => \S+ (\S+)\s*$", text, flags=re.M))


# --- pins ----------------------------------------------------------------------


def test_the_table_names_exactly_the_tools_the_project_uses():
    assert set(toolchain.TOOLS) == {
        "kube-apiserver", "etcd", "argo", "kubectl-argo-rollouts", "argo-events-check", "actionlint", "nats-server",
        "argo-events", "workflow-controller",
    }
    for name, tool in toolchain.TOOLS.items():
        assert tool.name == name and tool.version.startswith("v"), name


@pytest.mark.parametrize("name", sorted(set(toolchain.TOOLS) - {"argo-events-check"}))
def test_each_go_mod_requires_exactly_the_pinned_version(name):
    tool = toolchain.TOOLS[name]
    go_mod = TOOLS_DIR / tool.module_dir / "go.mod"
    assert go_mod.is_file(), f"tools/{tool.module_dir}/go.mod is missing"
    assert _requires(go_mod).get(tool.module) == tool.version, f"{go_mod} must require {tool.module} {tool.version}"


def test_the_events_check_is_built_against_the_deployed_argo_events_when_present():
    tool = toolchain.TOOLS["argo-events-check"]
    assert tool.version == versions.ARGO_EVENTS.app_version
    go_mod = TOOLS_DIR / tool.module_dir / "go.mod"
    if go_mod.is_file():
        assert _requires(go_mod).get(tool.module) == tool.version


def test_every_tools_directory_is_in_the_table():
    dirs = {p.name for p in TOOLS_DIR.iterdir() if p.is_dir()}
    assert dirs <= {tool.module_dir for tool in toolchain.TOOLS.values()}


def test_the_clis_match_the_controllers_the_charts_deploy_except_the_documented_argo_deviation():
    assert versions.ARGO_ROLLOUTS.app_version == versions.ARGO_ROLLOUTS_CLI
    # The one deviation (docs/decisions/0161): the proxy serves no v4.0.6, so the CLI is v4.0.5.
    # When the chart or the CLI moves, they must agree again.
    if versions.ARGO_WORKFLOWS.app_version != versions.ARGO_WORKFLOWS_CLI:
        assert (versions.ARGO_WORKFLOWS_CLI, versions.ARGO_WORKFLOWS.app_version) == ("v4.0.5", "v4.0.6")
    assert "v" + EventBusSettings().version == versions.NATS_SERVER


def test_kubernetes_staging_modules_are_the_release_of_the_same_kubernetes_version():
    minor_patch = versions.KUBERNETES.removeprefix("v1.")
    replaces = _replaces(TOOLS_DIR / "kube-apiserver" / "go.mod")
    staging = {m: v for m, v in replaces.items() if m.startswith("k8s.io/")}
    assert len(staging) >= 30 and "k8s.io/client-go" in staging
    assert set(staging.values()) == {f"v0.{minor_patch}"}
    # The rollouts plugin keeps its own Kubernetes libraries, of the same minor.
    rollouts = _replaces(TOOLS_DIR / "kubectl-argo-rollouts" / "go.mod")
    assert rollouts["k8s.io/client-go"].startswith("v0." + minor_patch.split(".")[0] + ".")


def test_the_version_ldflags_name_the_pinned_kubernetes():
    flags = " ".join(toolchain.TOOLS["kube-apiserver"].ldflags)
    assert f"k8s.io/component-base/version.gitVersion={versions.KUBERNETES}" in flags
    assert "k8s.io/component-base/version.gitMajor=1" in flags
    assert f"k8s.io/component-base/version.gitMinor={versions.KUBERNETES.split('.')[1]}" in flags


# --- tool_path -------------------------------------------------------------------


def _fake_tool(directory: Path, name: str, output: str, *, sleep: float = 0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    body = f"exec sleep {sleep}\n" if sleep else ""
    path.write_text(f"#!/bin/sh\n{body}echo '{output}'\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A clean environment: an empty PATH directory, an empty cache, no KUBEBUILDER_ASSETS."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("RELEASE_PIPELINE_TOOLS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    toolchain._reports_version.cache_clear()
    return tmp_path


def test_missing_tool_says_exactly_what_is_needed(env):
    with pytest.raises(toolchain.ToolMissing) as caught:
        toolchain.tool_path("etcd")
    message = str(caught.value)
    for part in ("etcd v3.6.5", "make tools", "Go >= 1.26", "Go module proxy", "KUBEBUILDER_ASSETS", "PATH"):
        assert part.replace("v3.6.5", versions.ETCD) in message


def test_unknown_tool_is_named(env):
    with pytest.raises(toolchain.ToolMissing, match="unknown tool 'kubectl'"):
        toolchain.tool_path("kubectl")


def test_kubebuilder_assets_provide_apiserver_and_etcd(env, monkeypatch):
    assets = env / "assets"
    fake = _fake_tool(assets, "kube-apiserver", "Kubernetes v1.99.0")
    _fake_tool(assets, "nats-server", f"nats-server: {versions.NATS_SERVER}")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    assert toolchain.tool_path("kube-apiserver") == fake
    with pytest.raises(toolchain.ToolMissing):  # only the envtest binaries are read from there
        toolchain.tool_path("nats-server")


def test_path_tool_is_used_only_at_the_pinned_version(env):
    _fake_tool(env / "bin", "nats-server", "nats-server: v2.10.9")
    with pytest.raises(toolchain.ToolMissing):
        toolchain.tool_path("nats-server")
    fake = _fake_tool(env / "bin", "actionlint", f"{versions.ACTIONLINT}\ninstalled by building from source")
    assert toolchain.tool_path("actionlint") == fake


def test_a_longer_version_is_not_the_pinned_one(env):
    _fake_tool(env / "bin", "actionlint", versions.ACTIONLINT + "0")
    with pytest.raises(toolchain.ToolMissing):
        toolchain.tool_path("actionlint")


def test_a_hung_version_command_does_not_hang_the_lookup(env, monkeypatch):
    monkeypatch.setattr(toolchain, "VERSION_TIMEOUT_S", 0.5)
    _fake_tool(env / "bin", "actionlint", versions.ACTIONLINT, sleep=30)
    with pytest.raises(toolchain.ToolMissing):
        toolchain.tool_path("actionlint")


def test_the_cached_build_is_used(env):
    cached = toolchain.cached_path("argo")
    assert cached == env / "cache" / f"argo-{versions.ARGO_WORKFLOWS_CLI}" / "argo"
    _fake_tool(cached.parent, "argo", "whatever")
    assert toolchain.tool_path("argo") == cached


def test_cache_root_follows_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv("RELEASE_PIPELINE_TOOLS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert toolchain.cache_root() == tmp_path / "xdg" / "release-pipeline" / "tools"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert toolchain.cache_root() == tmp_path / "home" / ".cache" / "release-pipeline" / "tools"


# --- build -----------------------------------------------------------------------

FAKE_GO = """#!/bin/sh
# A stand-in for go: `go env GOVERSION`, and `go build ... -o OUT PKG` writing a script.
if [ "$1" = env ]; then echo "{goversion}"; exit 0; fi
echo "$@" >> "{log}"
{fail}
while [ $# -gt 0 ]; do if [ "$1" = -o ]; then out="$2"; fi; shift; done
printf '#!/bin/sh\\necho built\\n' > "$out"; /bin/chmod +x "$out"
"""


def _fake_go(env: Path, *, goversion: str = "go1.26.8", fail: bool = False) -> Path:
    log = env / "go.log"
    script = FAKE_GO.format(goversion=goversion, log=log, fail='echo "compile error" >&2; exit 1' if fail else "")
    go = env / "bin" / "go"
    go.write_text(script, encoding="utf-8")
    go.chmod(0o755)
    return log


def test_build_builds_once_then_reuses_the_cache(env):
    log = _fake_go(env)
    out = io.StringIO()
    assert toolchain.build(["nats-server"], out=out) == []
    cached = toolchain.cached_path("nats-server")
    line = rf"nats-server {versions.NATS_SERVER}: built in \d+ s \({re.escape(str(cached))}\)\n"
    assert re.fullmatch(line, out.getvalue())
    assert os.access(cached, os.X_OK)
    argv = log.read_text(encoding="utf-8")
    assert "build -trimpath" in argv and "github.com/nats-io/nats-server/v2" in argv
    assert sorted(p.name for p in cached.parent.parent.iterdir()) == [cached.parent.name]  # no temp dir left

    out = io.StringIO()
    assert toolchain.build(["nats-server"], out=out) == []
    assert out.getvalue() == f"nats-server {versions.NATS_SERVER}: cached ({cached})\n"
    assert log.read_text(encoding="utf-8") == argv  # go was not run again


def test_build_replaces_a_build_whose_inputs_changed(env):
    _fake_go(env)
    toolchain.build(["actionlint"], out=io.StringIO())
    stamp = toolchain.cached_path("actionlint").parent / toolchain.STAMP
    stamp.write_text("an older go.mod\n", encoding="utf-8")
    out = io.StringIO()
    toolchain.build(["actionlint"], out=out)
    assert ": built in " in out.getvalue()
    assert stamp.read_text(encoding="utf-8").strip() == toolchain.inputs_digest(toolchain.TOOLS["actionlint"])


def test_a_failed_build_leaves_nothing_behind(env):
    _fake_go(env, fail=True)
    out = io.StringIO()
    assert toolchain.build(["etcd"], out=out) == ["etcd"]
    assert "etcd v3.6.5: FAILED:".replace("v3.6.5", versions.ETCD) in out.getvalue()
    assert "compile error" in out.getvalue()
    assert not (env / "cache").exists() or not any((env / "cache").iterdir())


def test_a_concurrent_build_that_finished_first_is_kept(env, monkeypatch):
    _fake_go(env)
    final = toolchain.cached_path("actionlint").parent
    rename = Path.rename

    def racing_rename(self, target):
        if Path(target) == final and self.name == "out":  # another `make tools` got there first
            final.mkdir()
            _fake_tool(final, "actionlint", "theirs")
            (final / toolchain.STAMP).write_text(toolchain.inputs_digest(toolchain.TOOLS["actionlint"]))
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", racing_rename)
    out = io.StringIO()
    assert toolchain.build(["actionlint"], out=out) == [], out.getvalue()
    assert "theirs" in (final / "actionlint").read_text(encoding="utf-8")
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name]


def test_the_argo_cli_is_built_in_a_module_copy_with_the_ui_placeholder():
    tool = toolchain.TOOLS["argo"]
    assert tool.placeholders == ("ui/dist/app/placeholder",) and tool.package == "./cmd/argo"


def test_missing_source_is_said_and_not_built(env, monkeypatch):
    monkeypatch.setattr(toolchain, "TOOLS_DIR", env / "no-tools")
    out = io.StringIO()
    assert toolchain.build(["argo-events-check"], out=out) == []
    assert "argo-events-check" in out.getvalue() and "missing source (tools/eventscheck/go.mod)" in out.getvalue()


def test_provided_tools_need_no_go(env, capsys):
    _fake_tool(env / "bin", "actionlint", versions.ACTIONLINT)
    assert cli.main(["tools", "--only", "actionlint"]) == 0
    assert capsys.readouterr().out == f"actionlint {versions.ACTIONLINT}: provided ({env / 'bin' / 'actionlint'})\n"


@pytest.mark.parametrize("goversion", [None, "go1.25.7"])
def test_without_a_usable_go_the_command_exits_2_with_what_is_needed(env, capsys, goversion):
    if goversion:
        _fake_go(env, goversion=goversion)
    assert cli.main(["tools", "--only", "etcd", "kube-apiserver"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tools: cannot build etcd {versions.ETCD}, kube-apiserver {versions.KUBERNETES}: ")
    assert "needs Go >= 1.26" in err and "Go module proxy" in err and "pinned version" in err
    assert "Traceback" not in err


def test_the_command_exits_1_when_a_build_fails(env, capsys):
    _fake_go(env, fail=True)
    assert cli.main(["tools", "--only", "actionlint"]) == 1
    assert "tools: failed to build actionlint" in capsys.readouterr().err


# --- the real binaries -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(set(toolchain.TOOLS) - {"argo-events"}))
def test_built_tools_report_their_pinned_version(name):
    """`make test` builds the tools first (`make tools`); a plain pytest run skips what is not built."""
    tool = toolchain.TOOLS[name]
    try:
        path = toolchain.tool_path(name)
    except toolchain.ToolMissing as exc:
        if os.environ.get("CI") and (TOOLS_DIR / tool.module_dir / "go.mod").is_file():
            pytest.fail(f"CI builds every tool first (make test -> make tools): {exc}")
        pytest.skip(str(exc))
    assert toolchain.reports_version(path, tool), f"{path} does not report {name} at its pin"


def test_argo_events_build_is_the_pinned_module():
    """argo-events has no version command: its Go build info names the main module and version."""
    try:
        path = toolchain.tool_path("argo-events")
    except toolchain.ToolMissing as exc:
        pytest.skip(str(exc))
    go = shutil.which("go")
    if not go:
        pytest.skip("go is not on PATH")
    info = subprocess.run([go, "version", "-m", str(path)], capture_output=True, text=True, check=True).stdout
    tool = toolchain.TOOLS["argo-events"]
    assert f"dep\t{tool.module}\t{tool.version}" in info or f"mod\t{tool.module}\t{tool.version}" in info, info
    assert f"path\t{tool.package}" in info, info

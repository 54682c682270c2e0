"""Benchmark of the offline render: time, memory, resources and cluster footprint per service.

Usage (from the repository root):

    .venv/bin/python benchmarks/render_bench.py                       # sizes 1,10,100,300; 3 runs
    .venv/bin/python benchmarks/render_bench.py --runs 5 --sizes 100,300
    .venv/bin/python benchmarks/render_bench.py generate --count 100 --out /tmp/s100.yaml
    .venv/bin/python benchmarks/render_bench.py profile --count 100 --stack dev

What it measures, per services-file size (README in this directory):
- wall time of rendering all four stacks in parallel, exactly as ``components render``
  does it (``engine.render``: one fresh process per stack, ``--jobs`` workers),
  from a fresh interpreter (start-up and imports included); median of ``--runs``;
- peak RSS: the largest ``ru_maxrss`` of the render's stack processes (each reports
  its own, ``StackResult.peak_rss_kib``);
- Pulumi resources per stack, and per service (marginal, by type, from resources.json);
- the bare mock engine: a throwaway project registering the same number of trivial
  ConfigMaps per stack through the same ``engine.render`` path; ratio = ours / bare;
- the cluster footprint: long-running pods and CPU/memory requests per service (the
  rendered Sensors) and the platform's fixed part (settings.sizes, EventBus, EventSource).

Results go to stdout and to ``benchmarks/results.md``. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components.config import STACKS, quantity_value  # noqa: E402

DEFAULT_SIZES = (1, 10, 100, 300)
RESULTS = Path(__file__).resolve().parent / "results.md"

# --- services file generator ---------------------------------------------------

TEAMS = ("datacollect", "labeling", "payments", "search", "identity", "insights", "media")
OWNERS = ("Appen", "Appen-Labs")
# Monorepos shared by several services (services live under services/<name>).
MONOREPOS = ("Appen/datacollect-platform", "Appen/labeling-suite", "Appen-Labs/ml-services")
TEST_IMAGES = (
    ("python:3.12.8-slim-bookworm", ["python", "-m", "pytest", "-q"], {}),
    ("golang:1.23.4-bookworm", ["go", "test", "./..."], {"GOPATH": "/tmp/go", "GOCACHE": "/tmp/go-cache"}),
    ("node:22.12.0-bookworm-slim", ["npm", "test"], {"npm_config_cache": "/tmp/npm"}),
)


def generate_services(count: int) -> dict[str, Any]:
    """A valid services file of ``count`` services with realistic variety; deterministic.

    Services are spread over seven teams (namespace = AppProject = team), each team with
    its own helm repository (two teams share one); about 40% live in three monorepos
    with sub-paths, the rest have a repository of their own (two GitHub owners). Two
    thirds have unit tests; some use traffic routing, analysis, trigger_on_push, their
    own canary, a Slack channel, build args or a fixed replica count; every tenth runs
    only in dev and sandbox (so the dev stack always has every service).
    """
    services = []
    for i in range(count):
        team = TEAMS[i % len(TEAMS)]
        name = f"{team[:4]}-svc-{i:03d}"
        helm_team = "labeling" if team == "insights" else team
        service: dict[str, Any] = {
            "name": name,
            "imageRepository": f"{team}/{name}",
            "namespace": team,
            "project": team,
            "helm": {"repo": f"Appen-International/{helm_team}-helm", "path": f"apps/{name}"},
        }
        if i % 5 in (1, 3):
            service["repo"] = MONOREPOS[i % len(MONOREPOS)]
            service["path"] = f"services/{name}"
            service["build"] = {"dockerfile": "Dockerfile", "args": {"SERVICE_NAME": name}}
        else:
            service["repo"] = f"{OWNERS[(i // 2) % len(OWNERS)]}/{name}"
        if i % 3 != 2:
            image, command, env = TEST_IMAGES[i % len(TEST_IMAGES)]
            service["tests"] = {"image": image, "command": command}
            if env:
                service["tests"]["env"] = env
        rollout: dict[str, Any] = {}
        if i % 4 == 0:
            rollout |= {"trafficRouting": True, "port": 8080 + i % 3}
        if i % 8 == 0:
            rollout["analysis"] = True
        if i % 6 == 5:
            # 5..7: counts every stack's canary steps can be carried out with (check refuses fewer).
            rollout["replicas"] = 5 + i % 3
        if rollout:
            service["rollout"] = rollout
        if i % 6 == 1:
            service["triggerOnPush"] = True
        if i % 9 == 4 and i % 10 != 9:  # a live canary only where the service deploys to live
            service["canary"] = {"live": [{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 60}]}
        if i % 7 == 3:
            service["slackChannel"] = f"#{team}-releases"
        if i % 10 == 9:
            service["environments"] = ["dev", "sandbox"]
        services.append(service)
    return {"services": services}


def write_services(count: int, path: Path) -> Path:
    text = f"# Generated by benchmarks/render_bench.py: {count} services.\n"
    text += yaml.safe_dump(generate_services(count), sort_keys=False, width=120)
    path.write_text(text, encoding="utf-8")
    return path


# --- measurement in a fresh process ----------------------------------------------

_MEASURE = """
import json, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from components.render.engine import render
if __name__ == "__main__":
    results = render({stacks!r}, Path({out!r}), Path({project!r}), {services!r} and Path({services!r}),
                     max_workers={jobs!r})
    print(json.dumps({{"peak_rss_kib": max(r.peak_rss_kib for r in results)}}))
"""


def measure(project: Path, services: Path | None, out: Path, jobs: int) -> dict[str, float]:
    """One render of all stacks in a fresh interpreter: wall seconds and peak RSS (MiB)."""
    code = _MEASURE.format(
        root=str(ROOT), stacks=list(STACKS), out=str(out), project=str(project),
        services=str(services) if services else "", jobs=jobs,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"render failed ({project}, {services}):\n{proc.stdout}\n{proc.stderr}")
    usage = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall": wall, "rss_mib": usage["peak_rss_kib"] / 1024}


BARE_MAIN = '''"""Bare mock-engine baseline: N trivial ConfigMaps, no components, no parents."""
import pulumi
import pulumi_kubernetes as k8s

count = int(pulumi.Config().require("count"))
for i in range(count):
    k8s.core.v1.ConfigMap(
        f"cm-{i}", metadata={"name": f"cm-{i}", "namespace": "bench"}, data={"key": f"value-{i}"}
    )
'''


def bare_project(directory: Path, counts: dict[str, int]) -> Path:
    """A throwaway Pulumi project whose stack files ask for ``counts[stack]`` resources."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Pulumi.yaml").write_text("name: bench-bare\nruntime: python\n", encoding="utf-8")
    (directory / "__main__.py").write_text(BARE_MAIN, encoding="utf-8")
    for stack in STACKS:
        # The default provider is not listed in resources.json: n ConfigMaps, n entries.
        n = counts.get(stack, 1)
        (directory / f"Pulumi.{stack}.yaml").write_text(f"config:\n  bench-bare:count: '{n}'\n", encoding="utf-8")
    return directory


# --- what the render produced ------------------------------------------------------


def rendered(out: Path, stack: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A rendered stack's resources and manifests (libyaml's loader: the files are large)."""
    from components.render.output import MANIFESTS_FILE, RESOURCES_FILE

    resources = json.loads((out / stack / RESOURCES_FILE).read_text(encoding="utf-8"))
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = (out / stack / MANIFESTS_FILE).read_text(encoding="utf-8")
    return resources, [doc for doc in yaml.load_all(text, Loader=loader) if doc is not None]


def cpu(quantity: str) -> float:
    """Cores of a Kubernetes CPU quantity ("250m" -> 0.25)."""
    return float(quantity_value(quantity))


def mem_mib(quantity: str) -> float:
    """MiB of a Kubernetes memory quantity ("1Gi" -> 1024)."""
    return float(quantity_value(quantity) / 2**20)


# settings.sizes entries that are long-running platform pods (config holds the ones
# the charts run once to one replica). The others (workflow_step, unit_tests,
# image_build, workflows_executor) are per-release workflow pods, and `sensor` is
# per service.
PLATFORM_SIZES = (
    "argocd_controller", "argocd_server", "argocd_repo_server", "argocd_applicationset", "argocd_dex",
    "argocd_redis", "argocd_notifications", "workflows_controller", "workflows_server",
    "events_controller", "rollouts_controller", "rollouts_dashboard",
)


def platform_footprint(stack: str, manifests: list[dict[str, Any]]) -> dict[str, float]:
    """Fixed pods and requests of the platform: Helm-chart controllers, EventBus, EventSource."""
    from components.config import load_stack_settings

    sizes = load_stack_settings(ROOT, stack).sizes
    pods = cores = mib = 0.0
    for field in PLATFORM_SIZES:
        size = getattr(sizes, field)
        replicas = size.replicas  # 1 for what the charts run once (components.config.Sizes)
        pods += replicas
        cores += replicas * cpu(size.resources.requests.cpu)
        mib += replicas * mem_mib(size.resources.requests.memory)
    for manifest in manifests:
        if manifest.get("kind") == "EventBus":
            js = manifest["spec"]["jetstream"]
            containers = [js["containerTemplate"], js["reloaderContainerTemplate"], js["metricsContainerTemplate"]]
            pods += js["replicas"]
            cores += js["replicas"] * sum(cpu(c["resources"]["requests"]["cpu"]) for c in containers)
            mib += js["replicas"] * sum(mem_mib(c["resources"]["requests"]["memory"]) for c in containers)
        elif manifest.get("kind") == "EventSource":
            spec = manifest["spec"]
            container = spec.get("template", {}).get("container", {})
            requests = container.get("resources", {}).get("requests", {"cpu": "0", "memory": "0"})
            pods += spec.get("replicas", 1)
            cores += spec.get("replicas", 1) * cpu(requests["cpu"])
            mib += spec.get("replicas", 1) * mem_mib(requests["memory"])
    return {"pods": pods, "cpu": cores, "mib": mib}


def sensor_footprint(manifests: list[dict[str, Any]]) -> dict[str, float]:
    """Pods and requests of every rendered Sensor (one long-running pod per replica)."""
    pods = cores = mib = 0.0
    for manifest in manifests:
        if manifest.get("kind") != "Sensor":
            continue
        replicas = manifest["spec"].get("replicas", 1)
        requests = manifest["spec"]["template"]["container"]["resources"]["requests"]
        pods += replicas
        cores += replicas * cpu(requests["cpu"])
        mib += replicas * mem_mib(requests["memory"])
    return {"pods": pods, "cpu": cores, "mib": mib}


# --- machine --------------------------------------------------------------------


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "CPU": model,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "Python": platform.python_version(),
        "OS": platform.platform(),
        "load average (1/5/15 min) at the end": _loadavg(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --- the benchmark ------------------------------------------------------------------


def services_per_stack(count: int) -> dict[str, int]:
    data = generate_services(count)["services"]
    return {s: sum(1 for d in data if s in d.get("environments", STACKS)) for s in STACKS}


def run(sizes: list[int], runs: int, jobs: int, bare: bool, keep: Path | None) -> str:
    work = Path(tempfile.mkdtemp(prefix="render-bench-"))
    rows: dict[int, dict[str, Any]] = {}
    for count in sizes:
        services = write_services(count, work / f"services-{count}.yaml")
        out = (keep or work) / f"out-{count}"
        ours = [measure(ROOT, services, out, jobs) for _ in range(runs)]
        files = {stack: rendered(out, stack) for stack in STACKS}
        counts = {stack: len(files[stack][0]) for stack in STACKS}
        row: dict[str, Any] = {
            "wall": statistics.median(m["wall"] for m in ours),
            "walls": [m["wall"] for m in ours],
            "rss": max(m["rss_mib"] for m in ours),
            "counts": counts,
            "services": services_per_stack(count),
        }
        if bare:
            project = bare_project(work / f"bare-{count}", counts)
            bare_runs = [measure(project, None, work / f"bare-out-{count}", jobs) for _ in range(runs)]
            row["bare"] = statistics.median(m["wall"] for m in bare_runs)
            row["bare_rss"] = max(m["rss_mib"] for m in bare_runs)
        row["types"] = collections.Counter(r["type"] for r in files["dev"][0])
        row["sensors"] = {stack: sensor_footprint(files[stack][1]) for stack in STACKS}
        row["platform"] = {stack: platform_footprint(stack, files[stack][1]) for stack in STACKS}
        rows[count] = row
        print(
            f"{count:>4} services: {row['wall']:.2f} s (runs {', '.join(f'{w:.2f}' for w in row['walls'])}), "
            f"peak RSS {row['rss']:.0f} MiB, resources {counts}"
            + (f", bare {row['bare']:.2f} s" if bare else ""),
            file=sys.stderr,
        )
    return report(rows, runs, jobs, bare)


def report(rows: dict[int, dict[str, Any]], runs: int, jobs: int, bare: bool) -> str:
    sizes = sorted(rows)
    lines = ["# Render benchmark", ""]
    lines += [f"Generated by `benchmarks/render_bench.py` (median of {runs} runs, {jobs} parallel stack processes)."]
    lines += ["", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in machine().items()]
    lines += ["", "## Render time and size (all four stacks)", ""]
    header = "| services | wall (s) | peak RSS per stack process (MiB) | resources dev / sandbox / integration / live |"
    sep = "|---:|---:|---:|---|"
    if bare:
        header += " bare engine, same counts (s) | ratio ours / bare |"
        sep += "---:|---:|"
    lines += [header, sep]
    for n in sizes:
        row = rows[n]
        counts = " / ".join(str(row["counts"][s]) for s in STACKS)
        line = f"| {n} | {row['wall']:.2f} | {row['rss']:.0f} | {counts} |"
        if bare:
            line += f" {row['bare']:.2f} | {row['wall'] / row['bare']:.2f} |"
        lines.append(line)

    lines += ["", "## Per service", ""]
    if 100 in rows and 300 in rows:
        lo, hi = rows[100], rows[300]
        d_services = hi["services"]["dev"] - lo["services"]["dev"]
        d_res = (hi["counts"]["dev"] - lo["counts"]["dev"]) / d_services
        d_time = (hi["wall"] - lo["wall"]) / 200
        lines += [
            f"- Marginal resources per service (dev stack, every service deploys there): "
            f"(R(300) - R(100)) / {d_services} = **{d_res:.2f}**",
            f"- Marginal wall time per service (all four stacks): (T(300) - T(100)) / 200 = "
            f"**{d_time * 1000:.1f} ms**",
            f"- T(300) / T(100) = **{hi['wall'] / lo['wall']:.2f}x**",
        ]
        if bare:
            d_bare = (hi["bare"] - lo["bare"]) / 200
            lines.append(f"- Bare engine, same resource counts: (T(300) - T(100)) / 200 = {d_bare * 1000:.1f} ms")
        lines += ["", "Per-service resources by type (dev stack, (count(300) - count(100)) / "
                  f"{d_services}; fractions are per-repository or per-team objects shared by services):", ""]
        lines += ["| type | per service |", "|---|---:|"]
        delta = {t: (hi["types"][t] - lo["types"].get(t, 0)) / d_services for t in hi["types"]}
        for t, v in sorted(delta.items(), key=lambda kv: (-kv[1], kv[0])):
            if v:
                lines.append(f"| `{t}` | {v:.2f} |")
        lines.append(f"| **total** | **{sum(delta.values()):.2f}** |")

    lines += ["", "## Cluster footprint", ""]
    big = rows[sizes[-1]]
    lines += [
        "Long-running pods the platform adds to each cluster. Each service adds its Sensor "
        "(one pod per `settings.sizes.sensor` replica). The Rollout's pods are the service's "
        "own workload (they replace the chart's Deployment), not the platform's, and are "
        "not counted; neither are the release and build workflow pods, which run only "
        "during a release.",
        "",
        "| stack | per service: pods | CPU request | memory request | "
        "platform fixed: pods | CPU request | memory request |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for stack in STACKS:
        n = big["services"][stack]
        sensor, fixed = big["sensors"][stack], big["platform"][stack]
        lines.append(
            f"| {stack} | {sensor['pods'] / n:.2f} | {sensor['cpu'] / n * 1000:.0f}m | "
            f"{sensor['mib'] / n:.0f} Mi | {fixed['pods']:.0f} | {fixed['cpu']:.2f} | {fixed['mib'] / 1024:.2f} Gi |"
        )
    lines += [
        "",
        f"(per service from the {sizes[-1]}-service render's Sensors; platform: Helm-chart "
        "controllers and servers from `settings.sizes`, the EventBus with its two sidecars per "
        "replica, the EventSource replicas.)",
    ]

    lines += ["", "## Goals", ""]
    if 100 in rows:
        t100 = rows[100]["wall"]
        lines.append(f"- 100 services, all four stacks, under 10 s on 2 cores: {t100:.2f} s — "
                     f"{'met' if t100 < 10 else 'NOT met'}")
    if 100 in rows and 300 in rows:
        ratio = rows[300]["wall"] / rows[100]["wall"]
        lines.append(f"- 300 services at most 3.5x the time of 100: {ratio:.2f}x — "
                     f"{'met' if ratio <= 3.5 else 'NOT met'}")
    return "\n".join(lines) + "\n"


# --- profile ----------------------------------------------------------------------

_PROFILE = """
import cProfile, pstats, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from components.render.engine import render_stack_in_process
profiler = cProfile.Profile()
start = time.perf_counter()
profiler.enable()
rendered = render_stack_in_process({stack!r}, Path({root!r}), Path({services!r}))
profiler.disable()
print(f"render_stack_in_process: {{time.perf_counter() - start:.2f}} s, {{len(rendered.resources)}} resources")
profiler.dump_stats({stats!r})
pstats.Stats({stats!r}).sort_stats({sort!r}).print_stats({top})
"""


def profile(count: int, stack: str, sort: str, top: int, stats: Path) -> None:
    """cProfile of ``render_stack_in_process`` for one stack, in a fresh process."""
    work = Path(tempfile.mkdtemp(prefix="render-profile-"))
    services = write_services(count, work / f"services-{count}.yaml")
    code = _PROFILE.format(root=str(ROOT), stack=stack, services=str(services), stats=str(stats), sort=sort, top=top)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    bench = sub.add_parser("bench", help="run the benchmark (the default)")
    gen = sub.add_parser("generate", help="write a generated services file")
    gen.add_argument("--count", type=int, required=True)
    gen.add_argument("--out", type=Path, required=True)
    prof = sub.add_parser("profile", help="cProfile one stack's render in a fresh process")
    prof.add_argument("--count", type=int, default=100)
    prof.add_argument("--stack", default="dev", choices=STACKS)
    prof.add_argument("--sort", default="cumulative")
    prof.add_argument("--top", type=int, default=40)
    prof.add_argument("--stats", type=Path, default=Path(tempfile.gettempdir()) / "render.prof")
    for p in (parser, bench):
        p.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated service counts")
        p.add_argument("--runs", type=int, default=3, help="runs per size (median)")
        p.add_argument("--jobs", type=int, default=max(2, min(4, os.cpu_count() or 2)),
                       help="parallel stack processes (the CLI's default)")
        p.add_argument("--no-bare", action="store_true", help="skip the bare mock-engine baseline")
        p.add_argument("--results", type=Path, default=RESULTS, help="Markdown file to write")
        p.add_argument("--keep", type=Path, help="keep the rendered output under this directory")
    args = parser.parse_args(argv)
    if args.command == "generate":
        write_services(args.count, args.out)
        return 0
    if args.command == "profile":
        profile(args.count, args.stack, args.sort, args.top, args.stats)
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    text = run(sizes, args.runs, args.jobs, not args.no_bare, args.keep)
    print(text)
    args.results.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Offline preview cost as a program grows: 1, 10 and 100 serverless agents in one program.

    python benchmarks/preview_scaling.py [--runs 3] [1 10 100]

Compares, in the same run, our components against the bare Pulumi SDK registering exactly the
same cloud resources (same types, names and inputs) with no components around them:

* ``bare`` (the baseline): the same typed ``pulumi_aws`` classes our components instantiate
  (``aws.lambda_.Function(...)``), called directly with the recorded inputs - what a hand-written
  program without components does;
* ``raw``: untyped ``pulumi.CustomResource(type, name, props)`` with the same inputs - no
  typed classes at all, a floor no real program reaches (typed classes declare every output
  property, which the SDK turns into futures and Outputs), shown for reference.

All three go through the same ``synthesize`` (same mocked engine, same runner settings), so the
difference is the cost of our component layer (arg validation, child factories, IAM rendering,
the component resources themselves). Each measurement runs in a fresh subprocess; each figure is
the median of ``--runs`` syntheses of the CPU time of the process (all threads;
``time.process_time``, less disturbed than wall time by other load on a shared machine), wall
time beside it. ``gc after`` is one full collection after the plan (the collector is paused while
a plan runs: see ``agent_infra.offline._OfflineSpeedups``). Peak memory is the traced Python heap of a
separate, traced synthesis.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

DEPLOYMENT = {"cloud": "aws", "topology": "serverless", "environment": "dev",
              "budget": {"monthly_limit_usd": 50, "emails": ["ops@example.com"]}}


def ours(count: int):
    from agent_infra.components.aws import ServerlessAgent
    from agent_infra.components.config import load_deployment

    config = load_deployment(DEPLOYMENT)

    def program() -> None:
        for index in range(count):
            ServerlessAgent(f"agent{index}", config)

    return program


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _assets(value: Any) -> Any:
    """A plan's JSON form of assets and archives (``agent_infra.offline._asset_json``) back to objects."""
    import pulumi

    if isinstance(value, dict) and len(value) == 1 and set(value) <= {"archive", "asset"}:
        (kind, spec), = value.items()
        if isinstance(spec, dict):
            if kind == "archive" and "assets" in spec:
                return pulumi.AssetArchive({k: _assets(v) for k, v in spec["assets"].items()})
            if "path" in spec:
                return pulumi.FileArchive(spec["path"]) if kind == "archive" else pulumi.FileAsset(spec["path"])
            if "text" in spec:
                return pulumi.StringAsset(spec["text"])
    if isinstance(value, dict):
        return {k: _assets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_assets(v) for v in value]
    return value


def bare(count: int, typed: bool = True):
    """The same custom resources, registered directly with the SDK, wired the same way.

    Replayed from our own plan: same types, names and inputs; an input that used another
    resource's output (an ARN, a URL, a name) waits on that resource's output through an apply,
    as a hand-written program would. ``typed``: through the same ``pulumi_aws`` classes our
    components used (recorded while our program ran), else as untyped ``pulumi.CustomResource``.
    What is missing is only our layer: components, arg validation, child factories, IAM rendering.
    """
    import pulumi

    from agent_infra.offline import synthesize

    classes: dict[tuple[str, str], type] = {}
    original = pulumi.CustomResource.__init__

    def recording(self: Any, t: str, name: str, *args: Any, **kwargs: Any) -> None:
        classes[(t, name)] = type(self)
        original(self, t, name, *args, **kwargs)

    pulumi.CustomResource.__init__ = recording  # type: ignore[method-assign]
    try:
        recorded = [r for r in synthesize(ours(count), stack="bench").custom_resources()
                    if not r.type.startswith("pulumi:providers:")]
    finally:
        pulumi.CustomResource.__init__ = original  # type: ignore[method-assign]
    produced: dict[str, tuple[int, str]] = {}
    wiring: list[dict[str, list[tuple[int, str]]]] = []
    token = re.compile(r"(arn:aws:[^\"\s,\]]+|https://[^\"\s,\]]+|[A-Za-z0-9-]{12,})")
    for index, resource in enumerate(recorded):
        deps: dict[str, list[tuple[int, str]]] = {}
        for key, value in resource.inputs.items():
            text = json.dumps(value)
            found = {produced[t] for t in token.findall(text) if t in produced}
            if found:
                deps[key] = sorted(found)
        wiring.append(deps)
        for key, value in resource.outputs.items():
            if isinstance(value, str) and len(value) >= 12:
                produced.setdefault(value, (index, key))
    # Typed constructors take Python names: camelCase input -> the snake_case parameter.
    params: list[dict[str, str]] = []
    for resource in recorded:
        cls = classes.get((resource.type, resource.name))
        names = set(inspect.signature(cls._internal_init).parameters) if typed and cls is not None else set()
        mapping = {key: _snake(key) for key in resource.inputs}
        if typed and cls is not None and not all(v in names for v in mapping.values()):
            missing = sorted(k for k, v in mapping.items() if v not in names)
            raise SystemExit(f"{resource.type}: inputs {missing} have no parameter on {cls.__name__}")
        params.append(mapping)

    def program() -> None:
        made: list[Any] = []
        for resource, deps, mapping in zip(recorded, wiring, params, strict=True):
            props: dict[str, object] = {}
            for key, value in resource.inputs.items():
                if key in deps:
                    # (a mocked output the typed class does not declare: wait on the resource's id)
                    upstream = [getattr(made[i], _snake(k) if typed else k, made[i].id)
                                for i, k in deps[key]]
                    props[key] = pulumi.Output.all(*upstream).apply(lambda _, v=value: v)
                else:
                    props[key] = value
            if typed:
                cls = classes[(resource.type, resource.name)]
                made.append(cls(resource.name, **{mapping[k]: _assets(v) for k, v in props.items()}))
            else:
                made.append(pulumi.CustomResource(resource.type, resource.name,
                                                  {k: None for k in resource.outputs} | props))

    return program, len(recorded)


def measure(mode: str, count: int, runs: int) -> dict[str, float]:
    """Runs in the child process."""
    from agent_infra.offline import synthesize

    synthesize(ours(1), stack="warmup")  # every mode starts with the SDK modules imported
    if mode == "ours":
        program, custom = ours(count), None
    else:
        program, custom = bare(count, typed=mode == "bare")
    synthesize(program, stack="warm")  # classes' type hints resolved, caches filled: not timed
    gc.collect()
    cpu, wall, gc_after = [], [], []
    plan = None
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        plan = synthesize(program, stack="bench")
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        g0 = time.perf_counter()
        gc.collect()
        gc_after.append(time.perf_counter() - g0)
    assert plan is not None
    # Peak Python heap of a separate, traced run (tracing slows it, so it is not a timed one).
    tracemalloc.start()
    synthesize(program, stack="bench")
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"cpu": statistics.median(cpu), "wall": statistics.median(wall), "gc_after": statistics.median(gc_after),
            "peak_mb": peak_mb, "resources": len(plan),
            "custom": custom if custom is not None else len(plan.custom_resources())}


def child(mode: str, count: int, runs: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(count), str(runs)], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=3600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(counts: list[int], runs: int) -> None:
    from bench_env import banner

    print(banner("offline preview scaling", packages=("agent-infra", "pulumi", "pulumi-aws", "protobuf", "grpcio")))
    print(f"CPU seconds of the process per synthesis, median of {runs}; wall seconds in brackets\n")
    print(f"{'agents':>6} {'cloud':>6} {'all':>6} | {'ours':>13} {'bare (typed)':>13} {'ratio':>6} | "
          f"{'raw':>6} {'ratio':>6} | {'gc after':>8} | {'ours MB':>8} {'bare MB':>8}")
    rows = []
    for count in counts:
        mine, base, raw = child("ours", count, runs), child("bare", count, runs), child("raw", count, runs)
        ratio = mine["cpu"] / base["cpu"]
        rows.append((count, mine["cpu"], ratio))
        print(f"{count:>6} {int(base['custom']):>6} {int(mine['resources']):>6} | "
              f"{mine['cpu']:>6.2f} ({mine['wall']:>4.1f}) {base['cpu']:>6.2f} ({base['wall']:>4.1f}) {ratio:>5.2f}x | "
              f"{raw['cpu']:>6.2f} {mine['cpu'] / raw['cpu']:>5.2f}x | {mine['gc_after']:>7.2f}s | "
              f"{mine['peak_mb']:>8.1f} {base['peak_mb']:>8.1f}")
    print("\naim: ours <= 1.3x bare at every size")
    if len(rows) >= 2:
        (n0, t0, _), (n1, t1, _) = rows[0], rows[-1]
        print(f"growth: {n1 / n0:.0f}x agents -> {t1 / t0:.1f}x CPU time "
              f"(linear would be {n1 / n0:.0f}x; aim <= {1.1 * n1 / n0:.0f}x)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(measure(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("counts", nargs="*", type=int, default=[1, 10, 100])
        parser.add_argument("--runs", type=int, default=3)
        args = parser.parse_args()
        main(args.counts, args.runs)

"""Offline preview cost as a program grows: 1, 10 and 100 serverless agents in one program.

Compares, in the same run, our components against the bare Pulumi SDK registering exactly the
same cloud resources (same types, names and inputs) with no components around them. Both go
through the same mocked engine, so the difference is the cost of our component layer (arg
validation, child factories, IAM rendering). Each measurement runs in a fresh subprocess so each
figure is that run's own; peak memory is the traced Python heap of the synthesis.

    python benchmarks/preview_scaling.py            # 1, 10, 100 agents
    python benchmarks/preview_scaling.py 1 10       # a subset
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def bare(count: int):
    """The same custom resources, registered directly with the SDK, wired the same way.

    Replayed from our own plan: same types, names and inputs; an input that used another
    resource's output (an ARN, a URL, a name) waits on that resource's output through an apply,
    as a hand-written program would. What is missing is only our layer: components, arg
    validation, child factories, IAM rendering.
    """
    import re

    from agent_infra.offline import synthesize

    recorded = [r for r in synthesize(ours(count), stack="bench").custom_resources()
                if not r.type.startswith("pulumi:providers:")]
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

    def program() -> None:
        import pulumi

        made: list[pulumi.CustomResource] = []
        for resource, deps in zip(recorded, wiring, strict=True):
            props: dict[str, object] = {k: None for k in resource.outputs}
            for key, value in resource.inputs.items():
                if key in deps:
                    upstream = [made[i].get_output(k) if hasattr(made[i], "get_output") else getattr(made[i], k)
                                for i, k in deps[key]]
                    props[key] = pulumi.Output.all(*upstream).apply(lambda _, v=value: v)
                else:
                    props[key] = value
            made.append(pulumi.CustomResource(resource.type, resource.name, props))

    return program, len(recorded)


def measure(mode: str, count: int) -> dict[str, float]:
    """Runs in the child process."""
    from agent_infra.offline import synthesize

    synthesize(ours(1), stack="warmup")  # both modes start with the SDK modules imported
    if mode == "ours":
        program, custom = ours(count), None
    else:
        program, custom = bare(count)
    start = time.perf_counter()
    plan = synthesize(program, stack="bench")
    seconds = time.perf_counter() - start
    # Peak Python heap of a second, traced run (tracing slows it, so it is not the timed one).
    tracemalloc.start()
    synthesize(program, stack="bench")
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"seconds": seconds, "peak_mb": peak_mb, "resources": len(plan),
            "custom": custom if custom is not None else len(plan.custom_resources())}


def child(mode: str, count: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(count)], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(counts: list[int]) -> None:
    print(f"{'agents':>6} {'cloud res':>9} | {'ours s':>7} {'bare s':>7} {'ratio':>6} | "
          f"{'ours MB':>8} {'bare MB':>8} | {'ours ms/agent':>13}")
    rows = []
    for count in counts:
        mine, base = child("ours", count), child("bare", count)
        ratio = mine["seconds"] / base["seconds"]
        rows.append((count, mine["seconds"]))
        print(f"{count:>6} {int(base['custom']):>9} | {mine['seconds']:>7.2f} {base['seconds']:>7.2f} {ratio:>5.2f}x | "
              f"{mine['peak_mb']:>8.1f} {base['peak_mb']:>8.1f} | {1000 * mine['seconds'] / count:>13.1f}")
    if len(rows) >= 2:
        (n0, t0), (n1, t1) = rows[0], rows[-1]
        print(f"growth: {n1 / n0:.0f}x agents -> {t1 / t0:.1f}x time (linear would be {n1 / n0:.0f}x)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(measure(sys.argv[2], int(sys.argv[3]))))
    else:
        main([int(a) for a in sys.argv[1:]] or [1, 10, 100])

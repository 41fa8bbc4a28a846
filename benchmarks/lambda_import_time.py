"""Cold-start cost of the Lambda handlers, beside baselines measured in the same run.

    python benchmarks/lambda_import_time.py [--runs 7]

Each figure is the median over fresh interpreters (``python -X importtime``, self-reported
cumulative microseconds of the top-level imports; interpreter start-up excluded):

* baselines: ``import boto3``, ``import fastapi``;
* ``import agent_infra.agent_app.lambda_handler``: what Lambda's init phase pays before the first event;
* HTTP handler ready: the module plus everything the first HTTP event builds (settings, adapters
  for SQS/DynamoDB, the FastAPI app, Mangum), timed in-process with no network;
* queue handler ready: the module plus the container and Powertools' batch utility;
* cold start, import + first request: a fresh interpreter imports the handler module and answers
  one API Gateway HTTP API (payload 2.0) ``GET /healthz`` event, timed in-process from before the
  first import to the response; beside it the same for a bare Mangum + FastAPI app with one route
  (the floor any FastAPI-on-Lambda handler pays).

It also prints the heaviest imports of the HTTP path, so it is clear what dominates.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_env import banner  # noqa: E402

ENV = {
    "AGENT_API_KEYS": "bench-key",
    "AGENT_QUEUE_BACKEND": "sqs",
    "AGENT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench",
    "AGENT_STATE_BACKEND": "dynamodb",
    "AGENT_STATE_TABLE": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
}
HTTP_READY = (
    "import time; t=time.perf_counter(); import agent_infra.agent_app.lambda_handler as h; rt=h.runtime(); rt.http; "
    "print('READY', (time.perf_counter()-t)*1e3)"
)
QUEUE_READY = (
    "import time; t=time.perf_counter(); import agent_infra.agent_app.lambda_handler as h; rt=h.runtime(); "
    "from aws_lambda_powertools.utilities.batch import BatchProcessor, process_partial_response; "
    "print('READY', (time.perf_counter()-t)*1e3)"
)
EVENT = (
    "{'version': '2.0', 'routeKey': '$default', 'rawPath': '/healthz', 'rawQueryString': '', "
    "'headers': {'host': 'abc.execute-api.us-east-1.amazonaws.com', 'x-forwarded-proto': 'https', "
    "'x-forwarded-port': '443'}, 'requestContext': {'accountId': '123456789012', 'apiId': 'abc', "
    "'domainName': 'abc.execute-api.us-east-1.amazonaws.com', 'requestId': 'r1', 'routeKey': '$default', "
    "'stage': '$default', 'timeEpoch': 0, 'http': {'method': 'GET', 'path': '/healthz', 'protocol': 'HTTP/1.1', "
    "'sourceIp': '203.0.113.7', 'userAgent': 'bench'}}, 'isBase64Encoded': False}"
)
OURS_FIRST_REQUEST = (
    "import time; t=time.perf_counter(); import agent_infra.agent_app.lambda_handler as h; "
    f"r=h.handler({EVENT}, None); assert r['statusCode'] == 200, r; "
    "print('READY', (time.perf_counter()-t)*1e3)"
)
BARE_FIRST_REQUEST = (
    "import time; t=time.perf_counter(); from fastapi import FastAPI; from mangum import Mangum; app=FastAPI(); "
    "app.get('/healthz')(lambda: {'status': 'ok'}); handler=Mangum(app, lifespan='off'); "
    f"r=handler({EVENT}, None); assert r['statusCode'] == 200, r; "
    "print('READY', (time.perf_counter()-t)*1e3)"
)
LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def _run(code: str, importtime: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": ""}
    args = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", code]
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, check=True)


def import_ms(module: str) -> tuple[float, list[tuple[float, str]]]:
    """Cumulative import time of ``module`` (ms) and its top-level imports by cost."""
    proc = _run(f"import {module}", importtime=True)
    top: list[tuple[float, str]] = []
    for line in proc.stderr.splitlines():
        m = LINE.match(line)
        if m and len(m.group(3)) == 1:  # depth 0: top-level imports of `-c`
            top.append((int(m.group(2)) / 1000, m.group(4)))
    startup = {"encodings", "site", "codecs", "io", "abc", "_frozen_importlib_external", "zipimport",
               "_signal", "marshal", "posix", "time", "_codecs", "encodings.utf_8", "_io", "_abc", "_thread",
               "_warnings", "_weakref", "_imp", "winreg"}
    ours = [t for t in top if t[1] not in startup]
    return sum(ms for ms, _ in ours), sorted(ours, reverse=True)


def heaviest(code: str, limit: int = 8) -> list[tuple[float, str]]:
    """The modules with the largest cumulative time anywhere below the HTTP-ready path."""
    proc = _run(code, importtime=True)
    rows = []
    for line in proc.stderr.splitlines():
        m = LINE.match(line)
        if m and len(m.group(3)) <= 3:  # depth 0 or 1
            rows.append((int(m.group(2)) / 1000, m.group(4)))
    return sorted(rows, reverse=True)[:limit]


def ready_ms(code: str) -> float:
    out = _run(code, importtime=False).stdout
    return float(out.split("READY", 1)[1].split()[0])


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    _run("import agent_infra.agent_app.lambda_handler", importtime=False)  # warm the .pyc cache, not measured
    rows = []
    for label, module in (("baseline: import boto3", "boto3"), ("baseline: import fastapi", "fastapi"),
                          ("import agent_infra.agent_app.lambda_handler", "agent_infra.agent_app.lambda_handler")):
        rows.append((label, median([import_ms(module)[0] for _ in range(args.runs)])))
    rows.append(("HTTP handler ready (import + app + adapters)", median([ready_ms(HTTP_READY) for _ in range(args.runs)])))
    rows.append(("queue handler ready (import + adapters + Powertools)",
                 median([ready_ms(QUEUE_READY) for _ in range(args.runs)])))
    bare_cold = median([ready_ms(BARE_FIRST_REQUEST) for _ in range(args.runs)])
    ours_cold = median([ready_ms(OURS_FIRST_REQUEST) for _ in range(args.runs)])
    rows.append(("cold start: bare Mangum + FastAPI, import + first request", bare_cold))
    rows.append(("cold start: agent_app handler, import + first request", ours_cold))
    print(banner("Lambda handler cold start", packages=("agent-infra", "fastapi", "mangum", "pydantic", "boto3",
                                                        "aws-lambda-powertools")))
    print(f"median of {args.runs} fresh interpreters (interpreter start-up excluded)\n")
    for label, ms in rows:
        print(f"  {label:<55} {ms:8.1f} ms")
    print(f"\ncold start (import + first GET /healthz): agent_app {ours_cold:.0f} ms = {ours_cold / bare_cold:.2f}x "
          f"the bare Mangum + FastAPI handler ({bare_cold:.0f} ms)")
    print("\nheaviest imports on the HTTP path (cumulative ms, depth <= 1):")
    for ms, name in heaviest(HTTP_READY.replace("print(", "(")):
        print(f"  {ms:8.1f}  {name}")


if __name__ == "__main__":
    main()

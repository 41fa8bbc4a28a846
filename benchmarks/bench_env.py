"""What every benchmark shares: the machine/version banner, free ports and a throwaway redis-server.

The banner is printed first by every benchmark so a figure is never read without the machine
(cores, CPU model, load) and the versions it was measured with.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence

DEFAULT_PACKAGES = ("agent-infra", "fastapi", "starlette", "pydantic", "uvicorn", "httptools", "uvloop", "redis")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def tool_version(argv: Sequence[str]) -> str:
    """First line of ``<tool> --version`` (wrk prints it on stderr and exits 1)."""
    if shutil.which(argv[0]) is None:
        return "not installed"
    out = subprocess.run(list(argv), capture_output=True, text=True, timeout=10)
    return ((out.stdout or out.stderr).strip().splitlines() or ["?"])[0]


def banner(title: str, packages: Sequence[str] = DEFAULT_PACKAGES, tools: Sequence[Sequence[str]] = ()) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    lines = [
        f"== {title}",
        f"machine: {os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"python {platform.python_version()} ({sys.executable})",
        "packages: " + ", ".join(f"{p} {version_of(p)}" for p in packages),
    ]
    lines += [f"tool: {tool_version(t)}" for t in tools]
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"process for port {port} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing on port {port} after {timeout:.0f} s")


@contextlib.contextmanager
def throwaway_redis(max_seconds: float = 1800) -> Iterator[str]:
    """A private redis-server on 127.0.0.1 (a free port, no persistence, its own temp dir), killed on
    exit and in any case after ``max_seconds`` by a watchdog: never the machine's own Redis."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: apt-get install redis-server")
    tmp = tempfile.mkdtemp(prefix="agent-bench-redis-")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", tmp, "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL,
    )
    watchdog = threading.Timer(max_seconds, server.kill)
    watchdog.daemon = True
    watchdog.start()
    try:
        wait_port(port, proc=server)  # type: ignore[arg-type]
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        watchdog.cancel()
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)

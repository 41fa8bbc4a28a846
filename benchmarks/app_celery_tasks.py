"""Celery baseline for benchmarks/app_bench.py: a no-op task on a Redis broker with defaults."""

import os
import time

import redis
from celery import Celery

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
app = Celery("bench", broker=URL)
_r = redis.Redis.from_url(URL)


@app.task
def noop(task_id: str, enqueued: float) -> None:
    _r.hset("bench:celery:done", task_id, f"{enqueued},{time.time()}")

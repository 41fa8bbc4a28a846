"""The minimal Redis Streams consumer-group loop baseline for benchmarks/app_bench.py."""

import contextlib
import os
import sys
import time

import redis

r = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
stream, group = "bench:minimal", "g"
with contextlib.suppress(redis.ResponseError):
    r.xgroup_create(stream, group, id="0", mkstream=True)
while True:
    got = r.xreadgroup(group, sys.argv[1] if len(sys.argv) > 1 else "c", {stream: ">"}, count=10, block=1000)
    for _key, entries in got or []:
        for entry_id, fields in entries:
            r.hset("bench:minimal:done", fields[b"id"], f"{fields[b'enqueued'].decode()},{time.time()}")
            r.xack(stream, group, entry_id)

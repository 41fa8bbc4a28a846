"""Prometheus metrics (served at ``GET /metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("agent_http_requests_total", "HTTP requests", ["route", "method", "status"])
ACCEPTED = Counter("agent_webhook_accepted_total", "Webhook tasks accepted", ["created"])
RUNS = Counter("agent_runs_total", "Finished runs", ["status"])
RUN_SECONDS = Histogram("agent_run_seconds", "Run duration", buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300))
CALLBACKS = Counter("agent_callbacks_total", "Callback attempts by outcome", ["outcome"])
WORKER_BUSY = Gauge("agent_worker_busy", "Tasks the worker is running now")
RATE_LIMITED = Counter("agent_rate_limited_total", "Requests answered 429")
AUTH_FAILURES = Counter("agent_auth_failures_total", "Requests with missing or unknown credentials")
WEBHOOK_REPLAYS = Counter("agent_webhook_replays_total", "Signed webhooks answered from an earlier webhook-id")

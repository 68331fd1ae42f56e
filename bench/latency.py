"""End-to-end latency at fixed rates: publish time -> rows queryable in ClickHouse.

Worker and sink run with a short flush interval. Envelopes of 100 readings are published at
exactly the wanted rate (event_time and sent_at = the publish time); a thread polls
``count()`` every ~20 ms. The i-th envelope counts as visible at the first poll whose count
covers the readings published up to and including it (arrival order is close to publish
order; the poll interval bounds the error from above).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from bench.data import Publisher, events_until, prepare_topics, registry_serializer, simulator
from bench.pipeline import READINGS_TABLE, RowCounter
from bench.procs import Child, child_env, run_step, spawn, stop
from bench.report import percentile
from sinks.clickhouse.config import login_url
from streams.settings import Settings

ENTERPRISES = 5     # 10 gateways: envelopes fill to 100 readings within the hold time


class Poller(threading.Thread):
    def __init__(self, counter: RowCounter, every: float) -> None:
        super().__init__(daemon=True)
        self.counter = counter
        self.every = every
        self.samples: list[tuple[float, int]] = []
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                self.samples.append((time.time(), self.counter.count()))
                self.halt.wait(self.every)
        except BaseException as exc:  # reported by the caller
            self.error = exc

    def latest(self) -> int:
        return self.samples[-1][1] if self.samples else 0


def envelopes(settings: Settings, rate: float, seconds: float, seed: int) -> tuple[
        list[tuple[str, str, Any]], list[tuple[str, dict[str, Any]]]]:
    """(registrations, telemetry envelopes as (key, envelope)) for ``seconds`` at ``rate``."""
    sim = simulator(settings, registry_serializer(settings), 100, int(rate * seconds), seed,
                    rate=rate, enterprises=ENTERPRISES, tag=f"r{int(rate)}")
    registrations: list[tuple[str, str, Any]] = []
    batches: list[tuple[str, dict[str, Any]]] = []
    for topic, key, value in events_until(sim, int(rate * seconds), lambda: None):
        if topic in ("enterprises", "sensors"):
            registrations.append((topic, key, value))
        elif topic == "telemetry" and not isinstance(value, bytes):
            batches.append((key, value))
    return registrations, batches


def paced(out: Publisher, batches: list[tuple[str, dict[str, Any]]], rate: float
          ) -> list[tuple[float, int]]:
    """Publish at ``rate`` readings/s; returns (publish time, cumulative readings) each."""
    sent: list[tuple[float, int]] = []
    start = time.time()
    cumulative = 0
    for key, env in batches:
        due = start + cumulative / rate
        pause = due - time.time()
        if pause > 0:
            time.sleep(pause)
        now = time.time()
        now_ms = int(now * 1000)
        env["sent_at"] = now_ms
        for reading in env["readings"]:
            reading["event_time"] = now_ms
        out.send("telemetry", key, env)
        cumulative += len(env["readings"])
        sent.append((now, cumulative))
    out.flush()
    return sent


def latencies(sent: list[tuple[float, int]], samples: list[tuple[float, int]], base: int
              ) -> list[float]:
    out = []
    j = 0
    for published, cumulative in sent:
        while j < len(samples) and samples[j][1] < base + cumulative:
            j += 1
        if j == len(samples):
            break
        out.append(max(0.0, samples[j][0] - published))
    return out


def measure(settings: Settings, rates: list[float], seconds: float, log_dir: Path,
            poll: float = 0.02) -> dict[str, Any]:
    """p50/p95/p99 per rate (one worker and one sink for all rates, after a warm-up)."""
    settings = settings.replace(sink_batch_seconds=0.2)
    env = child_env(settings)
    prepare_topics(settings, env)
    run_step(["migrate", "--quiet"], env)
    serializer_out = Publisher(settings, registry_serializer(settings), linger_ms=1)
    plans = {rate: envelopes(settings, rate, seconds + 3, seed=11) for rate in rates}
    for registrations, _ in plans.values():
        for topic, key, value in registrations:
            serializer_out.send(topic, key, value)
    serializer_out.flush()
    counter = RowCounter(login_url(settings), READINGS_TABLE)
    poller = Poller(counter, poll)
    queries = RowCounter(login_url(settings), READINGS_TABLE)   # the poller's is its own
    children: list[Child] = []
    results: dict[str, Any] = {}
    try:
        children.append(spawn("latency-sink", ["sink", "--no-migrate"], env, log_dir))
        children.append(spawn("latency-worker", ["worker"], env, log_dir))
        poller.start()
        for rate, (_, batches) in plans.items():
            warm = int(3 * rate / 100)             # 3 s of envelopes, not measured
            before = poller.latest()
            paced(serializer_out, batches[:warm], rate)
            _wait(poller, children,
                  before + sum(len(b["readings"]) for _, b in batches[:warm]), 90)
            base = poller.latest()
            sent = paced(serializer_out, batches[warm:], rate)
            _wait(poller, children, base + (sent[-1][1] if sent else 0), 30)
            lat = latencies(sent, list(poller.samples), base)
            stages = breakdown(queries, sent[0][0], sent[-1][0]) if sent else {}
            results[f"{int(rate)}"] = {
                "rate": rate, "envelopes": len(sent), "readings": sent[-1][1] if sent else 0,
                "measured": len(lat), "p50_s": round(percentile(lat, 50), 4),
                "p95_s": round(percentile(lat, 95), 4), "p99_s": round(percentile(lat, 99), 4),
                "max_s": round(max(lat), 4) if lat else None, "stages": stages}
            poller.samples = poller.samples[-1:]
    finally:
        poller.halt.set()
        poller.join(5)
        for child in reversed(children):
            stop(child)
        counter.close()
        queries.close()
    return results


def _wait(poller: Poller, children: list[Child], target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while poller.latest() < target and time.monotonic() < deadline:
        if poller.error is not None:
            raise RuntimeError(f"count poller failed: {poller.error}")
        for child in children:
            child.check()
        time.sleep(0.05)


BREAKDOWN = """SELECT quantiles(0.5, 0.95, 0.99)((received - sent) / 1000),
       quantiles(0.5, 0.95, 0.99)((toInt64(_version) - received) / 1000)
FROM (SELECT DISTINCT gateway_id, sequence, _version,
             toInt64(toUInt32(sent_at)) * 1000 + sent_at_ms AS sent,
             toInt64(toUInt32(received_at)) * 1000 + received_at_ms AS received
      FROM {db}.readings_raw WHERE sent_at >= toDateTime({lo}) AND sent_at <= toDateTime({hi}))"""


def breakdown(counter: RowCounter, first: float, last: float) -> dict[str, Any]:
    """Where the time goes, per envelope, from the stored timestamps: publish (sent_at) ->
    worker picks the envelope up (received_at) -> sink starts the insert (_version, ms).
    The rest of the end-to-end figure is the insert itself and the count poll. Needs the
    18.16 layout (DateTime + <name>_ms columns)."""
    try:
        rows = counter.execute(BREAKDOWN.format(db=counter.database, lo=int(first),
                                                hi=int(last) + 1))
    except Exception as exc:  # a newer server stores DateTime64: no _ms columns
        return {"error": " ".join(str(exc).split("Stack trace")[0].split())[:200]}
    to_worker, to_sink = rows[0]
    names = ("p50_s", "p95_s", "p99_s")
    return {"publish_to_worker": dict(zip(names, map(_round, to_worker), strict=True)),
            "worker_to_sink_insert": dict(zip(names, map(_round, to_sink), strict=True))}


def _round(value: float) -> float:
    return round(float(value), 4)

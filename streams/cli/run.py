"""``ebi run``: the main job. Brings the stack up, migrates, runs worker, sink and simulator
together with live progress, and on Ctrl-C (or after ``--duration``) stops them in order and
takes the stack down again, leaving the data under ``var/`` for ``ebi query``."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from schemas.catalog import load_catalog
from streams import clients
from streams.access.kafka_acls import OPERATOR_GROUPS
from streams.settings import Settings
from streams.stack import Stack, StackError
from streams.stack.process import free_port, port_free

RESTART_EXIT = 75  # `ebi worker`: an offset gap or stall was detected; run it again


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds of simulated traffic (0: until Ctrl-C)")
    parser.add_argument("--rate", type=int, default=2000, help="simulated readings per second")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-stack", action="store_true",
                        help="leave the stack running at the end")
    parser.add_argument("--drain-timeout", type=float, default=180.0, metavar="S",
                        help="after the traffic, wait at most this long for the worker and "
                        "the sink to catch up (default 180)")


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    metrics_port: int = 0
    log: str = ""


@dataclass
class Progress:
    started: float = field(default_factory=time.monotonic)
    last: dict[str, float] = field(default_factory=dict)


def _spawn(name: str, argv: list[str], env: dict[str, str], log_dir: str,
           metrics_port: int = 0, identity: str = "") -> Child:
    log = os.path.join(log_dir, f"{name}.log")
    if identity:
        env = {**env, "EBI_IDENTITY": identity}
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streams", *argv], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    return Child(name, proc, metrics_port, log)


def _port_pair() -> int:
    """A free port whose successor is free too."""
    for _ in range(50):
        port = free_port()
        if port < 65535 and port_free(port + 1):
            return port
    raise StackError("no two consecutive free ports for the metrics endpoints")


def _watermarks(settings: Settings, topics: tuple[str, ...]) -> dict[str, int]:
    from confluent_kafka import TopicPartition

    consumer = clients.consumer(settings, "ebi-run-progress")
    totals: dict[str, int] = {}
    try:
        metadata = consumer.list_topics(timeout=5)
        for name in topics:
            topic = settings.topic(name)
            info = metadata.topics.get(topic)
            if info is None or info.error is not None:
                totals[name] = 0
                continue
            total = 0
            for partition in info.partitions:
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                           timeout=5)
                total += high
            totals[name] = total
    finally:
        consumer.close()
    return totals


def _scrape(port: int, name: str) -> float:
    if not port:
        return 0.0
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as rsp:
            text = rsp.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def _report(settings: Settings, sink: Child | None, progress: Progress) -> None:
    catalog = load_catalog(settings.catalog)
    inputs = tuple(kind.input.name for kind in catalog.processed)
    clean = tuple(kind.clean.name for kind in catalog.processed if kind.clean is not None)
    alerts = catalog.output("alert").topic.name
    dead = catalog.output("deadletter").topic.name
    try:
        counts = _watermarks(settings, (*inputs, *clean, alerts, dead))
    except Exception as exc:  # progress is best effort; the job goes on
        print(f"  progress unavailable: {exc}", flush=True)
        return
    rows = _scrape(sink.metrics_port, "ebi_sink_rows_total") if sink else 0.0
    elapsed = time.monotonic() - progress.started
    published = sum(counts[t] for t in inputs)
    processed = sum(counts[t] for t in clean)
    print(f"[{elapsed:6.0f}s] published {published:>9,} msgs | processed {processed:>9,} | "
          f"alerts {counts[alerts]:>6,} | dead letters {counts[dead]:>6,} | "
          f"rows in ClickHouse {rows:>11,.0f}", flush=True)


def _lags(settings: Settings) -> tuple[int, int]:
    """Messages the worker has not processed, and messages the sink has not stored."""
    from streams.kafkaio import behind

    catalog = load_catalog(settings.catalog)
    return (behind(settings, settings.worker_id, [k.input.name for k in catalog.processed]),
            behind(settings, settings.sink_group, list(catalog.routes())))


def _drain(settings: Settings, limit: float, interrupted: Callable[[], bool]) -> int:
    """Wait until the worker has processed and the sink has stored everything (committed up
    to the end of every topic), showing the lag, for at most ``limit`` seconds; returns the
    messages still in flight."""
    print(f"ebi run: draining: waiting (up to {limit:.0f} s) until the worker and the sink "
          "have committed everything ...", flush=True)
    started = time.monotonic()
    while True:
        try:
            worker, sink = _lags(settings)
        except Exception as exc:  # a broker hiccup: try again
            print(f"  lag unavailable: {exc}", flush=True)
            worker = sink = -1
        if worker == 0 and sink == 0:
            print(f"  drained in {time.monotonic() - started:.0f} s: nothing in flight",
                  flush=True)
            return 0
        if worker >= 0:
            print(f"  [{time.monotonic() - started:4.0f}s] worker {worker:,} message(s) behind, "
                  f"sink {sink:,} behind", flush=True)
        if interrupted() or time.monotonic() - started > limit:
            left = max(worker, 0) + max(sink, 0)
            print(f"ebi run: stopping with {left:,} message(s) in flight (worker {worker:,}, "
                  f"sink {sink:,}); they are in Kafka and the next run inserts them",
                  flush=True)
            return left
        time.sleep(2)


def _tell_rate(simulator: Child) -> None:
    """The simulator's own account of the rate it reached."""
    try:
        with open(simulator.log, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return
    for line in lines[-5:]:
        if line.startswith(("simulated ", "rate: ")):
            print(f"  {line}", flush=True)


def _summary(settings: Settings, in_flight: int) -> None:
    """What happened to every message published: it adds up."""
    from sinks.run_summary import summary_lines
    from sinks.store import open_store

    backend = open_store(settings, "run")
    if backend is None:
        return
    try:
        for line in summary_lines(backend, in_flight):
            print(f"  {line}", flush=True)
    except Exception as exc:  # the summary is a courtesy; the data is there
        print(f"  summary unavailable: {exc}", flush=True)
    finally:
        backend.close()


def _stop(child: Child, timeout: float = 30.0) -> None:
    if child.proc.poll() is not None:
        return
    os.killpg(child.proc.pid, signal.SIGTERM)
    try:
        child.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.proc.pid, signal.SIGKILL)
        child.proc.wait()


def run(args: argparse.Namespace, settings: Settings) -> int:
    stack = Stack(settings)
    print("ebi run: starting the stack (Kafka, Apicurio Registry, ClickHouse) ...", flush=True)
    children: list[Child] = []
    interrupted = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    status = 0
    try:
        stack.up()
        for line in stack.status():
            print("  " + line.line(), flush=True)
        if not settings.kafka_bootstrap:
            from streams.access.provision import provision
            from streams.cli.stack import dev_keyring_line

            print(f"  provisioned: {provision(settings).summary()}", flush=True)
            print(f"  {dev_keyring_line(settings)}", flush=True)
        env = dict(os.environ)
        env.update({"EBI_KAFKA_BOOTSTRAP": settings.bootstrap,
                    "EBI_SCHEMA_REGISTRY_URL": settings.registry_url,
                    "EBI_CLICKHOUSE_URL": settings.clickhouse,
                    "EBI_DATA_DIR": str(settings.data_dir)})
        # each child its own principal (least privilege); their passwords come from
        # data_dir/secrets/credentials.toml, never through the environment
        identities = {"worker": "worker", "sink": "sink", "simulate": "simulator"}
        log_dir = str(settings.log_dir)
        os.makedirs(log_dir, exist_ok=True)
        for step in (["schemas", "register"], ["migrate", "--quiet"],
                     ["access", "apply", "--only", "clickhouse"]):
            done = subprocess.run([sys.executable, "-m", "streams", *step], env=env)
            if done.returncode != 0:
                raise StackError(f"`ebi {' '.join(step)}` failed (exit {done.returncode})")
        worker_port = _port_pair()  # the worker serves on it, the sink on the next one
        sink_port = worker_port + 1
        env["EBI_METRICS_PORT"] = str(worker_port)
        children.append(_spawn("worker", ["worker"], env, log_dir, worker_port,
                               identities["worker"]))
        sink = _spawn("sink", ["sink", "--no-migrate"], env, log_dir, sink_port,
                      identities["sink"])
        children.append(sink)
        sim_args = ["simulate", "--rate", str(args.rate), "--seed", str(args.seed),
                    "--duration", str(args.duration or 10**9),
                    "--truth", os.path.join(str(settings.data_dir), "ground-truth.jsonl")]
        simulator = _spawn("simulate", sim_args, env, log_dir, identity=identities["simulate"])
        children.append(simulator)
        if settings.alertmanager:
            # alarms reach people: the forwarder posts them to the stack's Alertmanager, as
            # the operator (it reads the outputs with an operator- group)
            children.append(_spawn("alarms-forward", ["alarms", "forward", "--group",
                                                      f"{OPERATOR_GROUPS}alarm-forwarder"],
                                   env, log_dir, identity="operator"))
            print(f"ebi run: alarms forwarded to {settings.alertmanager_address}", flush=True)
        print(f"ebi run: worker (metrics :{worker_port}), sink (metrics :{sink_port}) and "
              f"simulator at {args.rate} readings/s; logs in {log_dir}; Ctrl-C stops", flush=True)
        progress = Progress()
        deadline = time.monotonic() + args.duration if args.duration else float("inf")
        while not interrupted and time.monotonic() < deadline + 1:
            for i, child in enumerate(children):
                if child.name == "worker" and child.proc.poll() == RESTART_EXIT:
                    print("ebi run: the worker asked to start over (exit 75); restarting it",
                          flush=True)
                    children[i] = _spawn("worker", ["worker"], env, log_dir, worker_port,
                                         identities["worker"])
                    continue
                if child.proc.poll() not in (None, 0):
                    raise StackError(f"{child.name} exited with {child.proc.returncode}; "
                                     f"see {child.log}")
            time.sleep(2)
            _report(settings, sink, progress)
        _stop(simulator)
        _tell_rate(simulator)
        in_flight = _drain(settings, args.drain_timeout, lambda: interrupted)
        _report(settings, sink, progress)
        for child in reversed(children):
            _stop(child)
        _summary(settings, in_flight)
    except StackError as exc:
        print(f"ebi run: {exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        for child in reversed(children):
            _stop(child)
        if not args.keep_stack:
            stack.down()
            left = stack.leftover_processes()
            print("ebi run: stack stopped" + (f"; still running: {left}" if left else
                                               "; no service process left"), flush=True)
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    print(f"ebi run: data kept in {settings.data_dir}; try `ebi report` or "
          "`ebi query \"SELECT count() FROM readings\"`", flush=True)
    return status

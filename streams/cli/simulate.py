"""``ebi simulate``: realistic gateway, incident and hazard traffic with injected faults.

Publishes the enterprise and sensor registrations first, then paces the generator at
``--rate`` readings/s (simulated time follows the wall clock), through one batching
producer (linger, no per-message flush), and writes the ground truth as JSON Lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from schemas.catalog import default_catalog
from schemas.codec import AvroSerializer, SerializationContext
from streams.policy import load_policy
from streams.publisher.producer import make_producer
from streams.settings import Settings
from streams.signing.signer import signer_for
from streams.simulate import SimConfig, Simulator


def add(parser: argparse.ArgumentParser) -> None:
    d = SimConfig()
    arg = parser.add_argument
    arg("--seed", type=int, default=d.seed)
    arg("--rate", type=float, default=d.rate, help="readings per second (daily mean)")
    arg("--duration", type=float, default=d.duration_s, help="seconds of traffic")
    arg("--enterprises", type=int, default=d.enterprises)
    arg("--gateways-per-enterprise", type=int, default=d.gateways_per_enterprise)
    arg("--sensors-per-gateway", type=int, default=d.sensors_per_gateway)
    arg("--batch-size", type=int, default=d.batch_size, help="readings per envelope")
    arg("--heartbeat-interval", type=int, default=d.heartbeat_interval_s, help="seconds")
    arg("--incidents-per-min", type=float, default=d.incidents_per_min)
    arg("--hazards-per-min", type=float, default=d.hazards_per_min)
    arg("--duplicate-rate", type=float, default=d.duplicate_rate,
        help="fraction of readings re-sent")
    arg("--duplicate-report-rate", type=float, default=d.duplicate_report_rate)
    arg("--late-rate", type=float, default=d.late_rate, help="fraction of readings sent late")
    arg("--late-report-rate", type=float, default=d.late_report_rate,
        help="fraction of incidents whose initial report is late")
    arg("--anomalies", type=int, default=d.anomalies,
        help="sensors given an anomaly (SPIKE, FLATLINE, OUTLIER, ALARM_L1, ALARM_L2 in turn)")
    arg("--invalid-rate", type=float, default=d.invalid_rate,
        help="fraction of envelopes/reports/hazards that are invalid")
    arg("--concealment-rate", type=float, default=d.concealment_rate)
    arg("--figure-jump-rate", type=float, default=d.figure_jump_rate)
    arg("--silent-gateways", type=int, default=d.silent_gateways)
    arg("--silent-for", type=int, default=d.silent_for_s, help="seconds")
    arg("--clean", action="store_true", help="inject nothing (false-positive measurement)")
    arg("--truth", metavar="PATH", help="ground truth JSONL (default DATA_DIR/simulate/"
        "truth-SEED-START.jsonl)")
    arg("--no-pace", action="store_true", help="publish as fast as possible (event times then "
        "run ahead of the clock: keep --duration within the policy's future skew)")


def config(args: argparse.Namespace, start_ms: int) -> SimConfig:
    cfg = SimConfig(
        seed=args.seed, rate=args.rate, duration_s=args.duration, enterprises=args.enterprises,
        gateways_per_enterprise=args.gateways_per_enterprise,
        sensors_per_gateway=args.sensors_per_gateway, batch_size=args.batch_size,
        start_ms=start_ms, run_id=f"{args.seed:x}-{start_ms // 1000:x}",
        heartbeat_interval_s=args.heartbeat_interval,
        incidents_per_min=args.incidents_per_min, hazards_per_min=args.hazards_per_min,
        duplicate_rate=args.duplicate_rate, duplicate_report_rate=args.duplicate_report_rate,
        late_rate=args.late_rate, late_report_rate=args.late_report_rate,
        anomalies=args.anomalies, invalid_rate=args.invalid_rate,
        concealment_rate=args.concealment_rate, figure_jump_rate=args.figure_jump_rate,
        silent_gateways=args.silent_gateways, silent_for_s=args.silent_for)
    return cfg.clean() if args.clean else cfg


def rate_line(asked: float, planned: float, produced: int, elapsed: float, slept: float,
              full: int) -> str:
    """What rate the simulator reached against what was asked, and why it fell short."""
    seconds = max(elapsed, 1e-9)
    got, profile = produced / seconds, planned / seconds
    line = (f"rate: {got:,.0f} readings/s produced; asked {asked:,.0f}/s as a daily mean, "
            f"which the diurnal profile (+-30 %) makes {profile:,.0f}/s at this hour")
    if got >= 0.95 * profile:
        return line
    if full:
        why = (f"the producer's queue was full {full} times: Kafka took the messages slower "
               "than asked")
    elif slept < 0.01 * seconds:
        why = ("the simulator never got ahead of its schedule: generating and encoding the "
               "traffic used all its CPU on this machine")
    else:
        why = "the producer could not keep pace in bursts"
    return f"{line}; SHORT by {profile - got:,.0f}/s: {why}"


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams import clients

    clients.require_kafka(settings)
    start_ms = int(time.time() * 1000)
    registry = clients.registry(settings)
    serializer = AvroSerializer(registry)
    catalog = default_catalog()
    sim = Simulator(config(args, start_ms), load_policy(settings.policy_file or None),
                    header=lambda t: serializer.header(settings.topic(t),
                                                       catalog.topic(t).record))
    truth_path = Path(args.truth or settings.data_dir / "simulate" /
                      f"truth-{args.seed}-{start_ms}.jsonl")
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    producer = make_producer(settings, **{"linger.ms": 50})
    signer = signer_for(settings, registry, catalog)
    if signer is None:
        print("ebi simulate: no signing key (run `ebi stack up` for the local dev keyring, "
              "or set signing_key_file): the traffic goes out unsigned", file=sys.stderr)
    failures: list[str] = []

    def report(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    wall0 = time.monotonic()
    slept = 0.0          # seconds spent ahead of the schedule
    full = 0             # times the producer's queue was full
    registered = False
    reference = {kind.input.name for kind in catalog.reference}
    for topic, key, value, _ in sim:
        if not registered and topic not in reference:
            producer.flush(30)   # reference data first, so the worker knows every sensor
            registered = True
        record = value if isinstance(value, dict) else None
        data = value if isinstance(value, bytes) else serializer(
            value, SerializationContext(settings.topic(topic), catalog.topic(topic).record))
        raw_key = key.encode()
        headers = signer.sign(topic, raw_key, data, record) if signer is not None else None
        while True:
            try:
                producer.produce(settings.topic(topic), value=data, key=raw_key,
                                 headers=headers or None, on_delivery=report)
                break
            except BufferError:
                full += 1
                producer.poll(0.05)
        producer.poll(0)
        if not args.no_pace:
            ahead = (sim.now_ms - start_ms) / 1000 - (time.monotonic() - wall0)
            if ahead > 0.005:
                time.sleep(ahead)
                slept += ahead
    elapsed = time.monotonic() - wall0
    left = producer.flush(60)
    with open(truth_path, "w", encoding="utf-8") as handle:
        for line in sim.truth:
            handle.write(json.dumps(line) + "\n")
        handle.write(json.dumps({"summary": sim.summary()}) + "\n")
    summary = sim.summary()
    print(f"simulated {summary.get('readings', 0)} readings in "
          f"{summary.get('messages.telemetry', 0)} envelopes, "
          f"{summary.get('messages.incidents', 0)} incident reports, "
          f"{summary.get('messages.hazards', 0)} hazard records, "
          f"{summary.get('messages.heartbeats', 0)} heartbeats in "
          f"{elapsed:.1f} s; {len(sim.truth)} injected faults; ground truth: "
          f"{truth_path}")
    if not args.no_pace:
        print(rate_line(args.rate, sim.planned, summary.get("readings", 0), elapsed, slept,
                        full))
    if failures or left:
        print(f"ebi simulate: {len(failures) + left} messages not delivered "
              f"(last error: {failures[-1] if failures else 'timeout'})", file=sys.stderr)
        return 1
    return 0

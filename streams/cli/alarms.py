"""``ebi alarms forward``: deliver the alarms of ``alarm.events`` through Alertmanager;
``ebi alarms ack ID --by NAME --note TEXT``: acknowledge one.

``forward`` reads the whole topic at start to rebuild the active alarms, then follows it:
active alarms are posted to Alertmanager (``alertmanager_url``, or the local stack's own on
``alertmanager_port``) and re-posted while they last, clears are posted resolved, and
acknowledgements become silences. Runs until SIGTERM or Ctrl-C (or ``--duration``).

``ack`` sends an AlarmCommand (``alarm.commands``, the ``operator`` role) keyed by the
alarm's home, to the worker that keeps the alarm; with ``--wait`` it waits for the answer:
the ACKNOWLEDGED event, or the dead letter of an alarm that is not active.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from streams.settings import Settings


def add(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    forward = sub.add_parser("forward", help="post the active alarms to Alertmanager",
                             description="post the active alarms to Alertmanager, "
                                         "resolve cleared ones, silence acknowledged ones")
    forward.add_argument("--group", default="ebi-alarm-forwarder",
                         help="consumer group id (nothing is committed; default %(default)s)")
    forward.add_argument("--repost-every", type=float, default=60.0, metavar="SECONDS",
                         help="re-post every active alarm this often (default %(default)s)")
    forward.add_argument("--lease", type=float, default=240.0, metavar="SECONDS",
                         help="endsAt of a posted alarm: it resolves by itself this long after "
                              "the last post if the forwarder stops (default %(default)s)")
    forward.add_argument("--silence-hours", type=float, default=12.0, metavar="HOURS",
                         help="an acknowledgement's silence lasts this long and is renewed "
                              "while the alarm is active (default %(default)s)")
    forward.add_argument("--max-active", type=int, default=50_000, metavar="N",
                         help="active alarms tracked at most (default %(default)s)")
    forward.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                         help="timeout of each Alertmanager call (default %(default)s)")
    forward.add_argument("--generator-url", default="", metavar="URL",
                         help="link in each alert; {alarm_id} is replaced (default: none)")
    forward.add_argument("--duration", type=float, default=0.0, metavar="SECONDS",
                         help="stop after this long (0: run until stopped)")
    ack = sub.add_parser("ack", help="acknowledge an alarm (an operator has taken it on)",
                         description="acknowledge an alarm: it stays active until its "
                                     "condition ends, but nobody is notified again about it")
    ack.add_argument("alarm_id", metavar="ID", help="the alarm id (label alarm_id of the "
                                                    "notification: <16 hex digits>@<home>)")
    ack.add_argument("--by", required=True, metavar="NAME", help="who acknowledges it")
    ack.add_argument("--note", default="", metavar="TEXT", help="what is being done about it")
    ack.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                     help="wait this long for the worker's answer (0: do not wait)")
    flood = sub.add_parser("flood", help="measure alarm floods on simulated traffic, offline",
                           description="put simulated traffic (with the simulator's usual "
                                       "faults) through the worker's processors and alarm "
                                       "book in memory, and print the alarms raised per "
                                       "province and flood window (the policy's)")
    flood.add_argument("--duration", type=float, default=1800.0, metavar="SECONDS",
                       help="simulated seconds of traffic (default %(default)s)")
    flood.add_argument("--rate", type=float, default=200.0,
                       help="readings per second (default %(default)s)")
    flood.add_argument("--seed", type=int, default=7)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "ack":
        from streams.alarms.acknowledge import acknowledge

        return acknowledge(settings, args.alarm_id, args.by, args.note, args.wait)
    if args.action == "flood":
        return _flood(args, settings)
    return _forward(args, settings)


def _flood(args: argparse.Namespace, settings: Settings) -> int:
    from collections import Counter

    from streams.alarms.flood import dry_run, flood_figures
    from streams.policy import PolicyError, load_policy
    from streams.simulate import SimConfig

    try:
        policy = load_policy(settings.policy_file or None)
    except PolicyError as exc:
        print(f"ebi alarms flood: {exc}", file=sys.stderr)
        return 2
    start = int(time.time() * 1000) - int(args.duration * 1000)
    result = dry_run(SimConfig(seed=args.seed, rate=args.rate, duration_s=args.duration,
                               start_ms=start), policy)
    figures = flood_figures(result.events, policy.alarms.flood_window_ms,
                            policy.alarms.flood_limit)
    raised = Counter(e["alarm_type"] for e in result.events if e["transition"] == "RAISED")
    print(f"ebi alarms flood: {result.messages:,} messages over {args.duration:g} simulated s "
          f"(faults: {dict(sorted(result.truth.items()))})")
    print(f"{len(result.alerts)} alert(s) became {figures.alarms} alarm(s): "
          f"{dict(raised.most_common())}")
    print("\n".join(figures.lines(args.duration / 60)))
    return 0


def _forward(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.codec import AvroDeserializer, SerializationContext
    from streams import clients
    from streams.alarms.forwarder import AlarmForwarder, HttpTransport
    from streams.alarms.run import AlarmSource, SourceError, events_topic, forward
    from streams.stack.alertmanager import ready

    address = settings.alertmanager_address
    try:
        forwarder = AlarmForwarder(
            HttpTransport(address, timeout=args.timeout), repost_every=args.repost_every,
            lease=args.lease, silence_lease=args.silence_hours * 3600,
            max_active=args.max_active, generator_url=args.generator_url)
    except ValueError as exc:
        print(f"ebi alarms forward: {exc}", file=sys.stderr)
        return 2
    if not ready(address):
        print(f"ebi alarms forward: Alertmanager at {address} is not ready yet; alarms are "
              "kept and sent once it answers", file=sys.stderr)
    events = events_topic()
    topic = settings.topic(events.name)
    deserializer = AvroDeserializer(clients.registry(settings))
    context = SerializationContext(topic, events.record)
    consumer = clients.consumer(settings, args.group)
    source = AlarmSource(consumer, lambda data: deserializer(data, context)[0], topic)
    stop = {"now": False}

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    deadline = time.monotonic() + args.duration if args.duration > 0 else None

    def should_stop() -> bool:
        return stop["now"] or (deadline is not None and time.monotonic() >= deadline)

    try:
        if not source.open(should_stop):
            return 0
        forward(source, forwarder, should_stop)
    except SourceError as exc:
        print(f"ebi alarms forward: {topic} at {settings.bootstrap}: {exc}", file=sys.stderr)
        return 1
    finally:
        consumer.close()
    forwarder.flush()  # what the last events left to send
    return 0

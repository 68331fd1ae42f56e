"""``ebi canary``: a tagged synthetic scenario through the live pipeline (synthetic
monitoring). Prints one line per expectation and exits 1 if anything was missed or a clean
control record was flagged."""

from __future__ import annotations

import argparse
import uuid

from streams.settings import Settings


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=120.0, metavar="S",
                        help="how long to wait for the pipeline's results (default 120)")
    parser.add_argument("--silence-wait", type=float, default=None, metavar="S",
                        help="how long the silent gateway stays silent before it comes back "
                        "(default: 3 heartbeat intervals + the policy's check_every + 5 s)")
    parser.add_argument("--no-clickhouse", action="store_true",
                        help="check the Kafka outputs only (no sink running)")
    parser.add_argument("--run-id", default=None, help="id of this run (default: random)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams import clients
    from streams.canary.run import Canary
    from streams.policy import load_policy

    clients.require_kafka(settings)
    run_id = args.run_id or uuid.uuid4().hex[:10]
    canary = Canary(settings, clients.registry(settings),
                    load_policy(settings.policy_file or None), run=run_id,
                    timeout=args.timeout, silence_wait=args.silence_wait,
                    clickhouse=not args.no_clickhouse)
    print(f"canary run {run_id} (tag canary-{run_id}) on {settings.topic_prefix}*")
    verdicts = canary.run()
    for verdict in verdicts:
        print(verdict.line())
    failed = [v for v in verdicts if not v.ok]
    print(f"canary {'FAILED' if failed else 'passed'}: {len(verdicts) - len(failed)}/"
          f"{len(verdicts)} expectations met")
    return 1 if failed else 0

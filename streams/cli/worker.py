"""``ebi worker [--duration S]``: run the stream processors (faust worker) until stopped."""

from __future__ import annotations

import argparse

from streams.settings import Settings


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop after S seconds (default: run until SIGTERM/SIGINT)")
    parser.add_argument("--instance", default=None, metavar="NAME",
                        help="state directory name when several workers of one group share a "
                        "host (EBI_WORKER_INSTANCE)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.policy import PolicyError, load_policy
    from streams.worker.run import WorkerError, run_worker
    from streams.worker.topics import MissingTopicsError

    if args.instance:
        settings = settings.replace(worker_instance=args.instance)
    try:
        policy = load_policy(settings.policy_file or None, region_table=settings.region_table)
    except PolicyError as exc:
        print(f"ebi worker: {exc}")
        return 2
    try:
        return run_worker(settings, duration=args.duration, policy=policy)
    except (WorkerError, MissingTopicsError) as exc:
        print(f"ebi worker: {exc}")
        return 2

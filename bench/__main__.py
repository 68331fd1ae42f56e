"""``python -m bench`` (``make bench``): throughput, baseline, latency, cost, scaling and a
profile on a private local stack; prints a table and writes bench/results/latest.json and a
dated copy. Nothing here asserts a time."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.scenarios import Scenario, default_scenarios, run_scenarios, summary
from streams.settings import PROJECT_ROOT, Settings


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every scenario's readings (e.g. 0.1 for a smoke run)")
    only = os.environ.get("EBI_BENCH_ONLY", "").replace(",", " ").split()
    parser.add_argument("--only", nargs="*", default=only or None, metavar="NAME",
                        help="scenarios to run (b100 b10 b1 stream10 stream1 p1 w2 profile "
                        "workers1 workers2 workers3 latency kafka nosig100 sig100 nosig10 sig10 "
                        "sigcpu; default: EBI_BENCH_ONLY, else all)")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=report.RESULTS)
    parser.add_argument("--keep-stack", action="store_true", help="leave the stack running")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the Kafka/ClickHouse data (about 1.5 GB; logs are always kept)")
    args = parser.parse_args(argv)
    return args


def stack_settings(stamp: str) -> Settings:
    from streams.stack.process import free_port

    tcp = free_port()
    return Settings(data_dir=PROJECT_ROOT / "var" / "bench" / stamp, kafka_port=free_port(),
                    kafka_controller_port=free_port(), registry_port=free_port(),
                    clickhouse_tcp_port=tcp, clickhouse_http_port=free_port(),
                    clickhouse_url=f"clickhouse://127.0.0.1:{tcp}/bench",
                    log_level="WARNING")


def remove_data(data_dir: Path) -> None:
    """Everything of the private stack but its logs (var/bench/<stamp>/log)."""
    for path in data_dir.iterdir() if data_dir.exists() else []:
        if path.name == "log":
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    from streams.stack import Stack, StackError

    args = parse(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    settings = stack_settings(stamp)
    stack = Stack(settings)
    load_start = os.getloadavg()
    started = time.monotonic()
    scenarios: list[Scenario] = default_scenarios(args.scale, args.only)
    result: dict[str, Any] = {}
    print(f"bench: starting a private stack under {settings.data_dir} ...", flush=True)
    try:
        stack.up()
        from streams.signing.devkeys import ensure

        ensure(settings)    # the dev keyring every scenario's traffic is signed with
        result = run_scenarios(settings, scenarios, args.latency_seconds, args.only)
    except (StackError, RuntimeError) as exc:
        print(f"bench: failed: {exc}", file=sys.stderr, flush=True)
        result.setdefault("error", str(exc))
    finally:
        if not args.keep_stack:
            stack.down()
            left = stack.leftover_processes()
            if left:
                print(f"bench: still running after stack down: {left}", file=sys.stderr)
            elif not args.keep_data:
                remove_data(settings.data_dir)
    result["machine"] = {"cores": os.cpu_count(), "loadavg_start": list(load_start),
                         "loadavg_end": list(os.getloadavg()), "python": sys.version.split()[0]}
    result["cores"] = os.cpu_count()
    result["started_at"] = stamp
    result["bench_seconds"] = round(time.monotonic() - started, 1)
    result["command"] = " ".join([".venv/bin/python -m bench", *(argv or sys.argv[1:])])
    print(summary(result), flush=True)
    latest, dated = report.write(result, args.out)
    print(f"bench: wrote {latest} and {dated}", flush=True)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())

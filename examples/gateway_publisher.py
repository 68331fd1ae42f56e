"""Example: an enterprise gateway publishing sensor readings with store-and-forward.

Schema: schemas/avro/TelemetryBatch.avsc (topic ``<prefix>telemetry``, key gateway_id) and
schemas/avro/GatewayHeartbeat.avsc (topic ``<prefix>heartbeats``).

Every ``publish`` is on disk (fsync'd spool) before it returns; a background sender delivers
in order and survives broker outages and restarts. Run against the local stack:

    ebi stack up && ebi schemas register
    python examples/gateway_publisher.py --seconds 30
"""

from __future__ import annotations

import argparse
import random
import time
import uuid

from streams import clients
from streams.publisher import GatewayPublisher, SpoolFullError
from streams.settings import load

GATEWAY, ENTERPRISE = "gw-0001-01", "ent-110101-0001"
SENSORS = [("gw-0001-01-s001", "METHANE", "PERCENT_VOL", 0.25),
           ("gw-0001-01-s002", "CARBON_MONOXIDE", "PPM", 5.0),
           ("gw-0001-01-s003", "TEMPERATURE", "CELSIUS", 21.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--spool", default="var/gateway-spool")
    args = parser.parse_args()
    settings = load()
    publisher = GatewayPublisher(settings, args.spool, clients.registry(settings))
    publisher.start(interval=1.0)               # background delivery, in order
    sequence = int(time.time())
    end = time.monotonic() + args.seconds
    try:
        while time.monotonic() < end:
            now = int(time.time() * 1000)
            sequence += 1
            readings = [{"reading_id": str(uuid.uuid4()), "sensor_id": sid, "metric": metric,
                         "value": round(base * random.uniform(0.95, 1.05), 4), "unit": unit,
                         "quality": "GOOD", "event_time": now}
                        for sid, metric, unit, base in SENSORS]
            try:
                publisher.publish("telemetry", {"gateway_id": GATEWAY,
                                                "enterprise_id": ENTERPRISE, "sent_at": now,
                                                "sequence": sequence, "readings": readings})
                publisher.publish("heartbeats", {"gateway_id": GATEWAY,
                                                 "enterprise_id": ENTERPRISE, "sent_at": now,
                                                 "sequence": sequence, "interval_s": 10,
                                                 "firmware": "2.3.1"})
            except SpoolFullError as exc:       # broker unreachable for too long
                print(f"not stored: {exc}")
            time.sleep(1.0)
    finally:
        left = publisher.close()
        print(f"done; {left} entries wait in {args.spool} for the next run")


if __name__ == "__main__":
    main()

"""Blind spots (盲区死角) the gateways' clock finds besides silent gateways: registered
gateways that never connect, and sensors that stop reporting while their gateway is online.
The rules are the policy's ``[blind_spots]``.

**The sensor registry** (:class:`SensorRegistry`): the registered sensors by gateway, kept
from the reference data's change log (a registration costs the change, not a pass over every
sensor). A *registered gateway* is one a registered sensor names; it is registered since the
earliest ``updated_at`` of its sensors. Each change also becomes a ``SensorRegistration``
record (the registry echo: ClickHouse's ``sensor_registry``, basis of the online spot check).

**Never connected**: a registered gateway of a registered enterprise from which nothing has
arrived ``never_connected_after`` after its registration raises GATEWAY_NEVER_CONNECTED and
an OFFLINE status dated registration + that grace (so ``gateway_state`` and the online ratio
count it as an open blind spot). Nothing arrived means no state in the ``gateways`` table,
which only the worker owning the gateway's partition can tell; a gateway's partition is
decided by its sender's partitioner, so the worker checks a gateway when it owns every
partition the gateway could be on: the partition of librdkafka's default partitioner (CRC-32
of the key, ebi's own publishers) and of Kafka's Java default (murmur2). With one worker, or
when one worker owns both, the check is exact; a gateway whose two candidate partitions
belong to different workers is not checked by the clock (ClickHouse's ``spot_checks`` still
shows its sensors as not reporting). When the gateway first connects, the clock writes its
first ONLINE status (with the never-connected silence as ``offline_seconds``, and
GATEWAY_ONLINE if it had been past the grace).

**Silent sensors** (:class:`SensorWatch`): a registered sensor of an online gateway whose
latest reading arrived more than ``sensor_silent_after_intervals`` x its expected interval
ago raises SENSOR_SILENT (once per silence; SENSOR_RESUMED when a reading arrives again).
The silence counts from the sensor's latest reading's arrival (the last envelope in its
deduplication ring, :mod:`.dedup`), or, for a sensor that never reported, from its
registration; never from before the gateway came online, so a gateway coming back does not
make its sensors silent at once. Fields of the gateway state this module owns:
``silent_sensors`` (sensor id -> when its silence was alerted to have started, ms) and
``announced`` (the gateway's first ONLINE status was written; absent in states of earlier
layouts: taken as written).

**Forgetting**: a gateway whose enterprise is no longer registered leaves the state
``forget_after`` after its last message; so does the state of a sensor no longer registered
on that gateway. A registered gateway is never forgotten, however long it is offline: it is
an open blind spot.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zlib import crc32

from schemas.records import Record
from streams.processors.common import Outputs, canary_tag, make_alert
from streams.processors.reference import ReferenceData, SensorRef
from streams.processors.timetext import local_time, span

if TYPE_CHECKING:
    from streams.policy import Policy
    from streams.processors.liveness import GatewayState


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's default partitioner), as a signed 32-bit int."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    end = length - length % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def candidate_partitions(key: bytes, total: int) -> frozenset[int]:
    """The partitions a message keyed ``key`` lands on with librdkafka's default partitioner
    (CRC-32) and with Kafka's Java default (murmur2, made positive)."""
    return frozenset({crc32(key) % total, (murmur2(key) & 0x7FFFFFFF) % total})


def responsible(key: bytes, assignment: tuple[frozenset[int], int] | None) -> bool:
    """Whether this worker sees every message of ``key`` whatever partitioner its sender
    uses (None: it owns every partition)."""
    if assignment is None:
        return True
    owned, total = assignment
    if total <= 0 or len(owned) >= total:
        return True
    return candidate_partitions(key, total) <= owned


@dataclass
class RegisteredGateway:
    enterprise_id: str
    registered_at: int          # earliest registration of its sensors (ms)


class SensorRegistry:
    """The registered sensors by gateway, the registry echo, and the gateways not yet seen
    connected (see the module docstring)."""

    def __init__(self, policy: Policy, reference: ReferenceData) -> None:
        self.reference = reference
        self.grace_ms = int(policy.blind_spots.never_connected_after.total_seconds() * 1000)
        self.by_gateway: dict[str, dict[str, SensorRef]] = {}
        self.gateways: dict[str, RegisteredGateway] = {}
        self._gateway_of: dict[str, str] = {}         # sensor id -> its gateway
        self._echo: list[tuple[SensorRef, bool]] = []
        self._pending: list[tuple[int, str]] = []     # (due, gateway id): never-connected
        self._wanted: dict[str, int] = {}             # gateway id -> its current due
        self._checked: set[str] = set()               # gateways decided (connected or alerted)

    def refresh(self) -> None:
        """Apply the reference data's sensor changes since the last refresh."""
        changes = self.reference.take_sensor_changes()
        touched: set[str] = set()
        for sid, (ref, registered) in changes.items():
            old = self._gateway_of.pop(sid, None)
            if old is not None:
                self.by_gateway.get(old, {}).pop(sid, None)
                touched.add(old)
            if registered:
                self.by_gateway.setdefault(ref.gateway_id, {})[sid] = ref
                self._gateway_of[sid] = ref.gateway_id
                touched.add(ref.gateway_id)
            self._echo.append((ref, registered))
        for gid in touched:
            sensors = self.by_gateway.get(gid)
            if not sensors:
                self.by_gateway.pop(gid, None)
                self.gateways.pop(gid, None)
                continue
            first = min(s.registered_at for s in sensors.values())
            ent = next(iter(sensors.values())).enterprise_id
            known = self.gateways.get(gid)
            self.gateways[gid] = RegisteredGateway(ent, first)
            if gid not in self._checked and (known is None or known.registered_at != first):
                self.later(gid, first + self.grace_ms)

    def sensors_of(self, gateway_id: str) -> dict[str, SensorRef]:
        return self.by_gateway.get(gateway_id, {})

    def take_echo(self) -> list[Record]:
        """SensorRegistration records for the changes since the last call."""
        out = []
        for ref, registered in self._echo:
            out.append({
                "sensor_id": ref.sensor_id, "enterprise_id": ref.enterprise_id,
                "gateway_id": ref.gateway_id,
                "region_code": self.reference.region_of(ref.enterprise_id),
                "metric": ref.metric, "unit": ref.unit, "alarm_level1": ref.alarm_level1,
                "alarm_level2": ref.alarm_level2,
                "expected_interval_s": ref.expected_interval_ms // 1000,
                "registered": registered,
                "updated_at": ref.registered_at if registered else ref.registered_at + 1000,
                "tag": canary_tag(ref.sensor_id, ref.enterprise_id)})
        self._echo.clear()
        return out

    def recheck_all(self) -> None:
        """Partitions moved: every registered gateway not decided here is checked again."""
        self._checked.clear()
        self._wanted = {gid: g.registered_at + self.grace_ms for gid, g in self.gateways.items()}
        self._pending = [(due, gid) for gid, due in self._wanted.items()]
        heapq.heapify(self._pending)

    def due_unconnected(self, now_ms: int) -> list[str]:
        """Registered gateways whose grace has passed and that are not decided yet."""
        out = []
        while self._pending and self._pending[0][0] <= now_ms:
            due, gid = heapq.heappop(self._pending)
            if self._wanted.get(gid) != due:
                continue                 # superseded by a later look
            del self._wanted[gid]
            if gid in self.gateways and gid not in self._checked:
                out.append(gid)
        return out

    def decided(self, gateway_id: str) -> None:
        self._checked.add(gateway_id)

    def later(self, gateway_id: str, due: int) -> None:
        """Look at ``gateway_id`` (again) at ``due``."""
        self._wanted[gateway_id] = due
        heapq.heappush(self._pending, (due, gateway_id))


class SensorWatch:
    """Silent sensors of online gateways, unconnected gateways, and forgetting (see the
    module docstring). ``status`` builds a GatewayStatus record (the gateway monitor's)."""

    def __init__(self, policy: Policy, reference: ReferenceData, registry: SensorRegistry,
                 status: Callable[..., Record]) -> None:
        rules = policy.blind_spots
        self.after = rules.sensor_silent_after_intervals
        self.forget_ms = int(rules.forget_after.total_seconds() * 1000)
        self.grace_ms = registry.grace_ms
        self.reference = reference
        self.registry = registry
        self.status = status

    # -- sensors ---------------------------------------------------------------------------
    @staticmethod
    def last_arrival(state: GatewayState, sensor_id: str) -> int | None:
        """Arrival (ms) of the latest envelope that carried a reading of the sensor."""
        st = state["sensors"].get(sensor_id)
        if st is None or not st["recent_envelopes"]:
            return None
        return int(st["recent_envelopes"][-1][1])

    def _baseline(self, state: GatewayState, ref: SensorRef) -> int:
        last = self.last_arrival(state, ref.sensor_id)
        return max(last if last is not None else ref.registered_at, state["online_since"])

    def allowed(self, ref: SensorRef) -> int:
        return self.after * max(1, ref.expected_interval_ms)

    def sensor_due(self, gateway_id: str, state: GatewayState) -> int | None:
        """When the sensors of an online gateway next need a look (None: not before the
        state changes)."""
        if not state["online"]:
            return None
        silent = state.get("silent_sensors", {})
        found: int | None = None
        for sid, ref in self.registry.sensors_of(gateway_id).items():
            if sid in silent:
                last = self.last_arrival(state, sid)
                due = 0 if last is not None and last > silent[sid] else None
            else:
                due = self._baseline(state, ref) + self.allowed(ref) + 1
            if due is not None and (found is None or due < found):
                found = due
        return found

    def check_sensors(self, gateway_id: str, state: GatewayState, now_ms: int) -> Outputs:
        """SENSOR_SILENT and SENSOR_RESUMED for the registered sensors of an online gateway."""
        out = Outputs()
        if not state["online"]:
            return out
        silent = state.get("silent_sensors", {})
        enterprise = state["enterprise_id"]
        region = self.reference.region_of(enterprise)
        for sid, ref in self.registry.sensors_of(gateway_id).items():
            last = self.last_arrival(state, sid)
            if sid in silent:
                if last is not None and last > silent[sid]:
                    began = silent.pop(sid)
                    out.alerts.append(make_alert(
                        "SENSOR_RESUMED", "sensor", sid, last, now_ms,
                        f"sensor {sid} ({ref.metric}) on gateway {gateway_id} of enterprise "
                        f"{enterprise} reports again after {span(last - began)} of silence",
                        enterprise_id=enterprise, region_code=region,
                        value=(last - began) / 1000))
                continue
            baseline = self._baseline(state, ref)
            allowed = self.allowed(ref)
            if now_ms - baseline > allowed:
                began = baseline + allowed
                silent[sid] = began
                since = f"since {local_time(last)}" if last is not None else \
                    f"since its registration ({local_time(ref.registered_at)}): never"
                out.alerts.append(make_alert(
                    "SENSOR_SILENT", "sensor", sid, began, now_ms,
                    f"sensor {sid} ({ref.metric}) on gateway {gateway_id} of enterprise "
                    f"{enterprise} has sent no reading {since}, while the gateway is online "
                    f"(expected every {span(ref.expected_interval_ms)}; silent for "
                    f"{self.after} intervals is a blind spot)", enterprise_id=enterprise,
                    region_code=region, value=(now_ms - baseline) / 1000,
                    threshold=allowed / 1000))
        if silent:
            state["silent_sensors"] = silent
        return out

    # -- forgetting ------------------------------------------------------------------------
    def forget_due(self, gateway_id: str, state: GatewayState) -> int | None:
        """When a state nobody registers any more can be dropped: the gateway's (its
        enterprise is not registered) or a sensor's (not registered on this gateway)."""
        last = max(state["last_arrival_at"], state["last_seen_at"])
        if state["enterprise_id"] not in self.reference.enterprises:
            return last + self.forget_ms
        registered = self.registry.sensors_of(gateway_id)
        found: int | None = None
        for sid in state["sensors"]:
            if sid not in registered:
                due = (self.last_arrival(state, sid) or last) + self.forget_ms
                found = due if found is None else min(found, due)
        for sid in state.get("silent_sensors", {}):
            if sid not in registered:
                return 0
        return found

    def forget(self, gateway_id: str, state: GatewayState, now_ms: int) -> bool:
        """Drop the sensors of ``state`` nobody registers any more once silent long enough;
        True when the whole gateway state should go."""
        last = max(state["last_arrival_at"], state["last_seen_at"])
        if state["enterprise_id"] not in self.reference.enterprises:
            return now_ms >= last + self.forget_ms
        registered = self.registry.sensors_of(gateway_id)
        for sid in [s for s in state["sensors"] if s not in registered]:
            if now_ms >= (self.last_arrival(state, sid) or last) + self.forget_ms:
                del state["sensors"][sid]
        silent = state.get("silent_sensors")
        if silent:
            for sid in [s for s in silent if s not in registered]:
                del silent[sid]
        return False

    # -- gateways that never connected -----------------------------------------------------
    def first_contact(self, gateway_id: str, state: GatewayState, now_ms: int) -> Outputs:
        """The first ONLINE status of a gateway new to the platform (with the silence since
        its registration's grace ran out, when it had)."""
        out = Outputs()
        state["announced"] = True
        known = self.registry.gateways.get(gateway_id)
        first = state["online_since"]
        silent = 0
        if known is not None:
            silent = max(0, first - (known.registered_at + self.grace_ms))
        out.statuses.append(self.status(gateway_id, state, "ONLINE", first, silent))
        if silent:
            enterprise = state["enterprise_id"]
            out.alerts.append(make_alert(
                "GATEWAY_ONLINE", "gateway", gateway_id, first, now_ms,
                f"gateway {gateway_id} of enterprise {enterprise} connected for the first "
                f"time, {span(first - known.registered_at if known else 0)} after its "
                f"registration", enterprise_id=enterprise,
                region_code=self.reference.region_of(enterprise), value=silent / 1000))
        return out

    def never_connected(self, gateway_id: str, now_ms: int) -> Outputs:
        """GATEWAY_NEVER_CONNECTED and an OFFLINE status for a registered gateway nothing
        has arrived from."""
        out = Outputs()
        known = self.registry.gateways.get(gateway_id)
        if known is None:
            return out
        enterprise = known.enterprise_id
        region = self.reference.region_of(enterprise)
        since = known.registered_at + self.grace_ms
        sensors = len(self.registry.sensors_of(gateway_id))
        out.statuses.append({
            "gateway_id": gateway_id, "enterprise_id": enterprise, "region_code": region,
            "status": "OFFLINE", "changed_at": since, "last_seen_at": known.registered_at,
            "offline_seconds": 0, "tag": canary_tag(gateway_id, enterprise)})
        out.alerts.append(make_alert(
            "GATEWAY_NEVER_CONNECTED", "gateway", gateway_id, since, now_ms,
            f"gateway {gateway_id} of enterprise {enterprise} ({sensors} registered "
            f"sensor(s)) has never connected: registered {local_time(known.registered_at)}, "
            f"nothing received in {span(now_ms - known.registered_at)}",
            enterprise_id=enterprise, region_code=region,
            value=(now_ms - known.registered_at) / 1000, threshold=self.grace_ms / 1000))
        return out

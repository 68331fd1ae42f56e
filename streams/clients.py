"""Every client of Kafka and the schema registry is configured here, from the settings.

One place decides the addresses, the security settings and where the clients' own logs go,
so a change (a listener, credentials, a timeout) is made once for the worker, the sink, the
tools and the tests. librdkafka's logs go through Python logging (logger ``ebi.kafka``),
with repeats of one message summarised (see :class:`RepeatFilter`).
"""

from __future__ import annotations

import base64
import logging
import ssl
import threading
import time
from typing import Any

from streams.credentials import ca_file, kafka_login, registry_login
from streams.settings import Settings

KAFKA_LOG = "ebi.kafka"


class RepeatFilter(logging.Filter):
    """Lets the first record of a message through, then at most one per ``every`` seconds
    with the number of repeats held back (librdkafka repeats "Connection refused" and the
    like many times a second while a broker is down)."""

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every = every
        self._seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = _shape(record.getMessage())
        now = time.monotonic()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last[0] < self.every:
                self._seen[key] = (last[0], last[1] + 1)
                return False
            held = last[1] if last is not None else 0
            self._seen[key] = (now, 0)
            if len(self._seen) > 1000:
                self._seen.clear()
        if held:
            record.msg = f"{record.getMessage()} (and {held} more like it)"
            record.args = ()
        return True


def _shape(message: str) -> str:
    """A message with its digits removed, so repeats that differ by a count or a port match."""
    return "".join(c for c in message if not c.isdigit())[:200]


# librdkafka's words for conditions it retries by itself: its callers say what failed (a
# command with one clear line, a worker through its readiness), so these are INFO, not
# WARNING lines on every terminal.
RETRIED = ("Connection refused", "Coordinator load in progress", "Failed to resolve",
           "Connect to ipv", "Disconnected", "All broker connections are down",
           "Failed to acquire idempotence PID", "timed out", "Broker transport failure")


class RetriedToInfo(logging.Filter):
    """Lowers librdkafka's reports of conditions it retries to INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO and any(w in record.getMessage() for w in RETRIED):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_FILTERS = (RetriedToInfo(), RepeatFilter())


class _Logger(logging.LoggerAdapter):  # type: ignore[type-arg, unused-ignore]
    """What librdkafka is given: a logger whose records pass our filters before the level
    check (a record lowered to INFO is then dropped at the default WARNING level)."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        record = self.logger.makeRecord(self.logger.name, level, "(librdkafka)", 0, msg, args,
                                        None)
        for f in _FILTERS:
            if not f.filter(record):
                return
        if self.logger.isEnabledFor(record.levelno):
            self.logger.handle(record)


def kafka_logger() -> Any:
    """The logger librdkafka writes to (``ebi.kafka``, filtered)."""
    return _Logger(logging.getLogger(KAFKA_LOG), {})


class KafkaUnreachable(RuntimeError):
    """Kafka does not answer (one clear line for a command to print)."""


def require_kafka(settings: Settings, timeout: float = 4.0) -> None:
    """Kafka answers a metadata request within ``timeout`` seconds, or KafkaUnreachable:
    a command against a broker that is down fails fast instead of retrying for minutes."""
    try:
        metadata = admin(settings, **{"socket.timeout.ms": int(timeout * 1000)}).list_topics(
            timeout=timeout)
    except Exception as exc:  # KafkaException and friends
        error = exc.args[0] if exc.args else exc
        why = error.str() if hasattr(error, "str") else str(error)
        raise KafkaUnreachable(f"Kafka at {settings.bootstrap} does not answer within "
                               f"{timeout:g} s ({why[:200]})") from None
    if not metadata.brokers:
        raise KafkaUnreachable(f"Kafka at {settings.bootstrap} does not answer within "
                               f"{timeout:g} s")


def kafka_security(settings: Settings) -> dict[str, Any]:
    """librdkafka's security settings: protocol, SASL login, the CA to verify the broker.
    The password is in the result: never log it (``kafka_config`` results neither)."""
    protocol = settings.kafka_security.upper()
    config: dict[str, Any] = {"security.protocol": protocol}
    if protocol.startswith("SASL"):
        login = kafka_login(settings)
        config.update({"sasl.mechanism": settings.kafka_sasl_mechanism,
                       "sasl.username": login.username,
                       "sasl.password": login.password.reveal()})
    if protocol.endswith("SSL"):
        ca = ca_file(settings, settings.kafka_ca_file)
        if ca:
            config["ssl.ca.location"] = ca
    return config


def kafka_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """librdkafka settings for any client: address, security and logging; ``overrides``
    win."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        **kafka_security(settings),
        "logger": kafka_logger(),
        "log.connection.close": False,
    }
    config.update(overrides)
    return config


def admin(settings: Settings, **overrides: Any) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient(kafka_config(settings, **overrides))


def consumer(settings: Settings, group: str, **overrides: Any) -> Any:
    """A consumer of group ``group`` that commits nothing unless told to."""
    from confluent_kafka import Consumer

    return Consumer(kafka_config(settings, **{"group.id": group, "enable.auto.commit": False,
                                              **overrides}))


def producer(settings: Settings, **overrides: Any) -> Any:
    from confluent_kafka import Producer

    return Producer(kafka_config(settings, **overrides))


def faust_broker(settings: Settings) -> dict[str, Any]:
    """The broker options of the faust app (aiokafka): address and credentials."""
    import faust

    options: dict[str, Any] = {
        "broker": [f"kafka://{host}" for host in settings.bootstrap.split(",")]}
    protocol = settings.kafka_security.upper()
    context = tls_context(ca_file(settings, settings.kafka_ca_file)) \
        if protocol.endswith("SSL") else None
    if protocol.startswith("SASL"):
        login = kafka_login(settings)
        options["broker_credentials"] = faust.SASLCredentials(
            username=login.username, password=login.password.reveal(),
            mechanism=settings.kafka_sasl_mechanism, ssl_context=context)
    elif context is not None:
        options["broker_credentials"] = faust.SSLCredentials(context)
    return options


def tls_context(cafile: str) -> ssl.SSLContext:
    """A client TLS context that verifies the server (certificate and host name) against
    ``cafile``, or the system's trust store when it is empty."""
    return ssl.create_default_context(cafile=cafile or None)


def registry_config(settings: Settings) -> dict[str, Any]:
    """confluent-kafka ``SchemaRegistryClient`` settings besides the URL: basic auth and
    the CA (the password is in the result: never log it)."""
    config: dict[str, Any] = {}
    login = registry_login(settings)
    if login is not None:
        config["basic.auth.user.info"] = f"{login.username}:{login.password.reveal()}"
    if settings.registry_url.startswith("https:"):
        ca = ca_file(settings, settings.registry_ca_file)
        if ca:
            config["ssl.ca.location"] = ca
    return config


def registry_http(settings: Settings) -> tuple[dict[str, str], ssl.SSLContext | None]:
    """Headers (basic auth) and TLS context for plain HTTP calls to the registry
    (readiness checks)."""
    headers: dict[str, str] = {}
    login = registry_login(settings)
    if login is not None:
        token = base64.b64encode(f"{login.username}:{login.password.reveal()}".encode())
        headers["Authorization"] = f"Basic {token.decode()}"
    context = None
    if settings.registry_url.startswith("https:"):
        context = tls_context(ca_file(settings, settings.registry_ca_file))
    return headers, context


def registry_check(settings: Settings, timeout: float = 2.0) -> Any:
    """The readiness check of the registry, with this process's credentials."""
    from streams.readiness import RegistryCheck

    headers, context = registry_http(settings)
    return RegistryCheck(settings.registry_url, timeout=timeout, headers=headers,
                         context=context)


def registry(settings: Settings, timeout: float = 10.0) -> Any:
    """The caching schema-registry client (:class:`schemas.registry.SchemaRegistry`)."""
    from schemas.registry import SchemaRegistry

    return SchemaRegistry(settings.registry_url, timeout=timeout,
                          config=registry_config(settings))

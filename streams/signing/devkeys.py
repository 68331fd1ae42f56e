"""The local stack's dev keyring: every sender's key derived from one secret.

``ebi stack up``, ``ebi run``, the bench and the test fixtures call :func:`ensure`: it makes
``data_dir/secrets/signing/dev-seed`` (32 random bytes; directory 0700, file 0600; never
printed) and the trust file ``data_dir/signing/trust.toml`` with the dev registration
authority's public key. A key per owner is derived from the seed with HMAC-SHA256 (gateway
keys also from their enterprise), so every local process signs as the same gateway with the
same key and nothing accumulates on disk. :class:`DevSigner` signs each message with its
owner's key (read from the record: the catalog's ``Signed`` fields) and registers the public
keys on the keys topic, signed by the dev authority, before the first message that needs
them. Development only: in production each sender holds its own key (``ebi keys new``) and
the authority registers it (``ebi keys register``).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import fastavro
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.catalog import load_catalog
from schemas.catalog.model import Catalog, RecordType
from schemas.codec import strip_millis
from streams.signing.identity import NATIONAL, well_formed
from streams.signing.keys import REGISTRAR, KeyRef, SigningError, registration
from streams.signing.signer import Headers, Item, KeySigner
from streams.signing.trust import TRUST_FILE, trust_entry

log = logging.getLogger(__name__)

SEED_FILE = "dev-seed"
DEV_VALID_FROM = 946_684_800_000      # 2000-01-01: the policy's earliest time
Owner = tuple[str, str, str]           # kind, owner id, enterprise id


def keyring_dir(data_dir: Path) -> Path:
    return data_dir / "secrets" / "signing"


def ensure(settings: Any) -> DevKeyring:
    """The local dev keyring, made if missing, and its trust file (see the module doc)."""
    return DevKeyring.ensure(Path(settings.data_dir))


class DevKeyring:
    def __init__(self, data_dir: Path, seed: bytes) -> None:
        self.data_dir = data_dir
        self._seed = seed
        self._keys: dict[Owner, tuple[KeyRef, KeySigner]] = {}

    def __repr__(self) -> str:
        return f"DevKeyring({keyring_dir(self.data_dir)})"

    @classmethod
    def existing(cls, data_dir: Path) -> DevKeyring | None:
        path = keyring_dir(Path(data_dir)) / SEED_FILE
        try:
            seed = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SigningError(f"cannot read the dev keyring {path}: {exc.strerror}") from None
        if len(seed) != 32:
            raise SigningError(f"the dev keyring {path} is damaged ({len(seed)} bytes, not 32)")
        return cls(Path(data_dir), seed)

    @classmethod
    def ensure(cls, data_dir: Path) -> DevKeyring:
        folder = keyring_dir(data_dir)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
        path = folder / SEED_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        keyring = cls.existing(data_dir)
        assert keyring is not None
        keyring.write_trust()
        return keyring

    def write_trust(self) -> Path:
        """data_dir/signing/trust.toml with the dev registrar's public key (if absent)."""
        path = self.data_dir / "signing" / TRUST_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            ref, _ = self.registrar()
            tmp = path.with_suffix(".tmp")
            tmp.write_text("# The registration authority's public keys (trust anchors): the "
                           "local dev keyring's.\n# Made by `ebi stack up`; see "
                           "docs/security.md.\n\n" + trust_entry(
                               ref, "local dev registration authority"), "utf-8")
            os.replace(tmp, path)
        return path

    def key(self, kind: str, owner: str, enterprise: str = "") -> tuple[KeyRef, KeySigner]:
        """The dev key of an owner (GATEWAY: with its enterprise; ENTERPRISE: its own)."""
        if kind == "ENTERPRISE":
            enterprise = owner
        elif kind != "GATEWAY":
            enterprise = ""
        found = self._keys.get((kind, owner, enterprise))
        if found is None:
            label = f"ebi-dev-key/1|{kind}|{owner}|{enterprise}".encode()
            private = Ed25519PrivateKey.from_private_bytes(
                hmac.new(self._seed, label, hashlib.sha256).digest())
            signer = KeySigner(private)
            ref = KeyRef(signer.key_id, kind, owner, enterprise, private.public_key(),
                         DEV_VALID_FROM)
            found = self._keys[(kind, owner, enterprise)] = (ref, signer)
        return found

    def registrar(self) -> tuple[KeyRef, KeySigner]:
        return self.key(REGISTRAR, "local")


class KeyPublisher:
    """Publishes key registrations (SigningKey records on the keys topic), signed by the
    registration authority's key, and waits until Kafka has them."""

    def __init__(self, settings: Any, registry: Any, catalog: Catalog,
                 authority: KeySigner) -> None:
        self.settings = settings
        self.registry = registry
        self.catalog = catalog
        self.authority = authority
        kind = catalog.signing_keys
        if kind is None:
            raise SigningError("the catalog has no signing-key reference type")
        self.kind = kind
        self._producer: Any = None

    def publish(self, records: list[dict[str, Any]], timeout: float = 30.0) -> None:
        """Send registrations (or ``{"key_id": ..., None}`` tombstones: value None)."""
        from schemas.codec import AvroSerializer, SerializationContext
        from streams import clients

        if not records:
            return
        registry = self.registry if self.registry is not None else \
            clients.registry(self.settings)
        self.registry = registry
        serializer = AvroSerializer(registry, self.catalog.schemas)
        logical = self.kind.input.name
        topic = self.settings.topic(logical)
        ctx = SerializationContext(topic, self.kind.input.record)
        if self._producer is None:
            self._producer = clients.producer(self.settings, **{"acks": "all",
                                                                "enable.idempotence": True})
        producer = self._producer
        errors: list[str] = []

        def report(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        for record in records:
            key = str(record["key_id"]).encode()
            value = None if record.get("tombstone") else serializer(record, ctx)
            producer.produce(topic, value=value, key=key, on_delivery=report,
                             headers=self.authority.sign(logical, key, value))
        left = producer.flush(timeout)
        if errors or left:
            raise SigningError(f"key registrations not delivered to {topic} as "
                               f"{self.settings.kafka_username or self.settings.identity} "
                               f"({errors[0] if errors else 'timeout'}); registering keys "
                               "needs the registrar role (docs/security.md)")


def _nowhere(records: list[dict[str, Any]]) -> None:
    raise SigningError("the catalog has no signing-key reference type to register keys on")


class DevSigner:
    """Signs each message with its owner's dev key; registers keys before first use."""

    def __init__(self, keyring: DevKeyring, catalog: Catalog,
                 register: Callable[[list[dict[str, Any]]], None]) -> None:
        self.keyring = keyring
        self.catalog = catalog
        self.register = register
        self.kinds = {kind.input.name: kind for kind in catalog.types}
        self._registered: set[str] = set()
        self._enterprise_of: dict[str, str] = {}       # gateway -> enterprise (learned)
        self._by_key: dict[tuple[str, bytes], Owner] = {}
        self._pairs = {(k.signed.gateway, k.signed.enterprise) for k in catalog.types
                       if k.signed is not None and k.signed.gateway and k.signed.enterprise}
        self._schemas: dict[str, Any] = {}

    @classmethod
    def for_settings(cls, keyring: DevKeyring, settings: Any, registry: Any = None,
                     catalog: Catalog | None = None) -> DevSigner:
        catalog = catalog or load_catalog(settings.catalog)
        if catalog.signing_keys is None:      # nothing of this catalog is signed
            return cls(keyring, catalog, _nowhere)
        _, authority = keyring.registrar()
        return cls(keyring, catalog, KeyPublisher(settings, registry, catalog,
                                                  authority).publish)

    def __repr__(self) -> str:
        return f"DevSigner({self.keyring!r})"

    # -- owners -------------------------------------------------------------------------------
    def _learn(self, record: Mapping[str, Any]) -> None:
        for gateway, enterprise in self._pairs:
            gw, ent = record.get(gateway), record.get(enterprise)
            if isinstance(gw, str) and isinstance(ent, str):
                self._enterprise_of[gw] = ent

    def _decode(self, kind: RecordType, value: bytes | None) -> dict[str, Any] | None:
        """The record a framed value claims to be (the owner a gateway that sent it meant);
        of a damaged one (e.g. truncated) its leading fields, as far as they read."""
        if not value or len(value) < 6 or value[0] != 0 or len(value) > 4_000_000:
            return None
        body = value[5:]
        schema = self._schemas.get(kind.input.record)
        if schema is None:     # timestamps as plain longs: a wild one must not stop us
            schema = self._schemas[kind.input.record] = fastavro.parse_schema(
                strip_millis(self.catalog.schemas.json(kind.input.record)), named_schemas={})
        try:
            record = fastavro.schemaless_reader(io.BytesIO(body), schema, None)
        except Exception:  # damaged: the fields it starts with, else the key decides
            return _leading_fields(self.catalog.schemas.json(kind.input.record), body)
        return record if isinstance(record, dict) else None

    def owner(self, logical: str, key: bytes | None, value: bytes | None,
              record: Mapping[str, Any] | None) -> Owner | None:
        kind = self.kinds.get(logical)
        spec = kind.signed if kind is not None else None
        if kind is None or spec is None:
            return None
        if REGISTRAR in spec.kinds:
            if record is not None:
                self._learn(record)
            return (REGISTRAR, "local", "")
        rec = record if record is not None else self._decode(kind, value)
        found: Owner | None = None
        if rec is not None:
            self._learn(rec)
            for option in spec.kinds:
                if option == "GATEWAY" and spec.gateway and spec.enterprise:
                    gw, ent = rec.get(spec.gateway), rec.get(spec.enterprise)
                    if isinstance(gw, str) and isinstance(ent, str):
                        found = ("GATEWAY", gw, ent)
                elif option == "ENTERPRISE" and spec.enterprise:
                    ent = rec.get(spec.enterprise)
                    if isinstance(ent, str):
                        found = ("ENTERPRISE", ent, ent)
                elif option == "REGIONAL" and spec.region:
                    region = rec.get(spec.region)
                    if isinstance(region, str):
                        # a malformed code (a test's invalid record) has no regional system
                        # of its own: the national one signs it
                        found = ("REGIONAL", region if well_formed(region) else NATIONAL, "")
                if found is not None:
                    break
        if found is None and key is not None:
            found = self._by_key.get((logical, key))
            if found is None and spec.gateway and kind.input.key == spec.gateway and \
                    "GATEWAY" in spec.kinds:
                gateway = key.decode("utf-8", "replace")
                enterprise = self._enterprise_of.get(gateway)
                if enterprise is not None:
                    found = ("GATEWAY", gateway, enterprise)
        if found is not None and key is not None:
            self._by_key[(logical, key)] = found
        return found

    # -- signing ------------------------------------------------------------------------------
    def _ensure_registered(self, owners: Iterable[Owner]) -> None:
        new = []
        for kind, owner, enterprise in owners:
            if kind == REGISTRAR:
                continue
            ref, _ = self.keyring.key(kind, owner, enterprise)
            if ref.key_id not in self._registered:
                new.append(ref)
        if new:
            now = int(time.time() * 1000)
            unique = {ref.key_id: ref for ref in new}
            self.register([registration(ref, now, "local dev keyring")
                           for ref in unique.values()])
            self._registered.update(unique)
            log.info("registered %d dev signing key(s)", len(unique))

    def prepare(self, items: Iterable[Item]) -> None:
        """Register the keys of every owner of ``items`` at once (learning first which
        enterprise each gateway of the batch belongs to)."""
        items = list(items)
        for _, _, value in items:
            if isinstance(value, Mapping):
                self._learn(value)
        owners = []
        for logical, key, value in items:
            raw = key.encode() if isinstance(key, str) else key
            record = value if isinstance(value, Mapping) else None
            data = value if isinstance(value, bytes) else None
            found = self.owner(logical, raw, data, record)
            if found is not None:
                owners.append(found)
        self._ensure_registered(owners)

    def sign(self, logical: str, key: bytes | None, value: bytes | None,
             record: Mapping[str, Any] | None = None) -> Headers:
        found = self.owner(logical, key, value, record)
        if found is None:
            return []
        self._ensure_registered([found])
        _, signer = self.keyring.key(*found)
        return signer.sign(logical, key, value)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _leading_fields(schema: dict[str, Any], body: bytes) -> dict[str, Any] | None:
    """The record's first fields, as far as they are strings, ints/longs, enums or unions of
    null and those, read from an Avro body that may be cut short or hold wild values (what a
    damaged message still says about its sender)."""
    out: dict[str, Any] = {}
    pos = 0
    enums: dict[str, list[str]] = {}

    def read(kind: Any, at: int) -> tuple[Any, int]:
        if isinstance(kind, list):            # a union: the branch, then its value
            branch, at = _varint(body, at)
            if not 0 <= branch < len(kind):
                raise ValueError("bad union branch")
            return read(kind[branch], at)
        if isinstance(kind, dict):
            if kind.get("type") == "enum":
                enums[str(kind.get("name"))] = list(kind["symbols"])
                index, at = _varint(body, at)
                return kind["symbols"][index], at
            return read(kind.get("type"), at)
        if kind == "null":
            return None, at
        if kind == "string":
            length, at = _varint(body, at)
            if length < 0 or at + length > len(body):
                raise ValueError("string beyond the end")
            return body[at:at + length].decode("utf-8"), at + length
        if kind in ("int", "long"):
            return _varint(body, at)
        if isinstance(kind, str) and kind.split(".")[-1] in enums:   # a named enum again
            index, at = _varint(body, at)
            return enums[kind.split(".")[-1]][index], at
        raise ValueError(f"stop at {kind}")

    try:
        for f in schema.get("fields", ()):
            out[f["name"]], pos = read(f["type"], pos)
    except (IndexError, ValueError, KeyError, UnicodeDecodeError):
        pass
    return out or None

"""``ebi keys``: the senders' signing keys (docs/security.md, *Record signing*).

- ``new --out FILE``: a new Ed25519 private key in FILE (0600, never overwritten); prints
  its key id and public key, nothing secret. A gateway, an enterprise or a regional system
  makes its own and keeps it; the public key goes to the registration authority.
- ``register --kind GATEWAY --owner GW --enterprise ENT (--public-key B64 | --key-file F)``:
  (the registration authority) publishes the key on the keys topic, signed with the
  authority's key (``--authority-key``, else ``signing_key_file``, else the local dev
  keyring's). ``--valid-from`` (default now).
- ``revoke KEY_ID [--at TIME]``: the registration again with ``revoked_at`` (default now):
  messages from then on are refused, earlier ones stay verifiable.
- ``forget KEY_ID``: a tombstone: the key is gone (its records can no longer be verified).
- ``list``: the registered keys (public data).
- ``trust --key-file F``: the ``[[registrar]]`` entry of an authority key for the workers'
  trust file.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

from streams.settings import Settings


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["new", "register", "revoke", "forget", "list",
                                           "trust"])
    parser.add_argument("key_id", nargs="?", help="revoke, forget: the key id")
    parser.add_argument("--out", type=Path, help="new: where to write the private key")
    parser.add_argument("--kind", choices=["GATEWAY", "ENTERPRISE", "REGIONAL"])
    parser.add_argument("--owner", help="gateway_id, enterprise_id, or the region code")
    parser.add_argument("--enterprise", help="GATEWAY: the enterprise operating it")
    parser.add_argument("--public-key", help="base64 of the raw 32-byte public key")
    parser.add_argument("--key-file", type=Path, help="a private key file (its public key "
                        "is used; nothing secret is sent)")
    parser.add_argument("--authority-key", type=Path,
                        help="the registration authority's private key file")
    parser.add_argument("--valid-from", default="", help="ISO time (default now)")
    parser.add_argument("--at", default="", help="revoke: ISO time (default now)")
    parser.add_argument("--note", default="", help="who holds the key, where")


def _ms(text: str) -> int:
    if not text:
        return int(time.time() * 1000)
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


def _authority(args: argparse.Namespace, settings: Settings) -> Any:
    from streams.signing.devkeys import DevKeyring
    from streams.signing.keys import SigningError
    from streams.signing.signer import KeySigner

    path = args.authority_key or (Path(settings.signing_key_file)
                                  if settings.signing_key_file else None)
    if path is not None:
        return KeySigner.from_file(path)
    keyring = DevKeyring.existing(settings.data_dir)
    if keyring is None:
        raise SigningError("no registration authority key: give --authority-key (or "
                           "signing_key_file), or run `ebi stack up` for the local dev one")
    return keyring.registrar()[1]


def _publisher(args: argparse.Namespace, settings: Settings) -> Any:
    from schemas.catalog import load_catalog
    from streams import clients
    from streams.signing.devkeys import KeyPublisher

    clients.require_kafka(settings)
    return KeyPublisher(settings, clients.registry(settings), load_catalog(settings.catalog),
                        _authority(args, settings))


def _public(args: argparse.Namespace) -> Any:
    from streams.signing.keys import SigningError, public_key, read_private_key

    if args.key_file is not None:
        return read_private_key(args.key_file).public_key()
    if not args.public_key:
        raise SigningError("give --public-key or --key-file")
    try:
        return public_key(base64.b64decode(args.public_key, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise SigningError(f"--public-key: {exc}") from None


def _registered(settings: Settings) -> Any:
    from schemas.catalog import load_catalog
    from streams import clients
    from streams.signing.registered import read_keys
    from streams.signing.trust import default_trust_file, load_trust

    clients.require_kafka(settings)
    trust = default_trust_file(settings)
    return read_keys(settings, clients.registry(settings), load_catalog(settings.catalog),
                     load_trust(trust) if trust.exists() else None)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.signing.keys import (
        KeyRef,
        key_id_of,
        new_private_key,
        raw_public,
        registration,
        write_private_key,
    )
    from streams.signing.trust import trust_entry
    from streams.signing.wire import fingerprint

    if args.action == "new":
        if args.out is None:
            print("ebi keys new: --out FILE is required", file=sys.stderr)
            return 2
        key = new_private_key()
        write_private_key(key, args.out)
        text = base64.b64encode(raw_public(key.public_key())).decode()
        print(f"wrote {args.out} (0600; keep it secret); key id {key_id_of(key)}; "
              f"public key {text}")
        return 0
    if args.action == "trust":
        from streams.signing.keys import REGISTRAR, read_private_key

        if args.key_file is None:
            print("ebi keys trust: --key-file FILE is required", file=sys.stderr)
            return 2
        anchor = read_private_key(args.key_file).public_key()
        ref = KeyRef(fingerprint(raw_public(anchor)), REGISTRAR, "registrar", "", anchor)
        print(trust_entry(ref, args.note), end="")
        return 0
    if args.action == "list":
        found = _registered(settings)
        for key_id, record in sorted(found.records.items()):
            ref = found.keys[key_id]
            state = f"revoked at {record['revoked_at']}" if record.get("revoked_at") \
                else "valid"
            print(f"{key_id}  {ref.kind:<10} {ref.owner_id:<24} {ref.enterprise_id:<24} "
                  f"from {record['valid_from']}  {state}  {record.get('note', '')}")
        for line in found.rejected:
            print(f"not accepted: {line}")
        print(f"{len(found.records)} registered key(s)")
        return 0
    if args.action == "register":
        if not args.kind or not args.owner:
            print("ebi keys register: --kind and --owner are required", file=sys.stderr)
            return 2
        if args.kind == "GATEWAY" and not args.enterprise:
            print("ebi keys register: a GATEWAY key needs --enterprise", file=sys.stderr)
            return 2
        public = _public(args)
        enterprise = args.owner if args.kind == "ENTERPRISE" else (args.enterprise or "")
        ref = KeyRef(fingerprint(raw_public(public)), args.kind, args.owner, enterprise,
                     public, _ms(args.valid_from))
        _publisher(args, settings).publish([registration(ref, _ms(""), args.note)])
        print(f"registered key {ref.key_id} of {ref.owner()}, valid from {ref.valid_from}")
        return 0
    if not args.key_id:
        print(f"ebi keys {args.action}: the key id is required", file=sys.stderr)
        return 2
    if args.action == "forget":
        _publisher(args, settings).publish([{"key_id": args.key_id, "tombstone": True}])
        print(f"key {args.key_id} forgotten (tombstone); its records can no longer be "
              "verified")
        return 0
    found = _registered(settings)
    record = found.records.get(args.key_id)
    if record is None:
        print(f"ebi keys revoke: key {args.key_id} is not registered", file=sys.stderr)
        return 1
    revoked = dict(record, revoked_at=_ms(args.at), updated_at=_ms(""))
    _publisher(args, settings).publish([revoked])
    print(f"key {args.key_id} of {found.keys[args.key_id].owner()} revoked at "
          f"{revoked['revoked_at']}")
    return 0

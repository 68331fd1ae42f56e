"""Signing what a sender produces: :class:`KeySigner` holds one key (a real gateway, a
regional system or the registration authority: the ``signing_key_file`` setting, made by
``ebi keys new``); :class:`~streams.signing.devkeys.DevSigner` derives one per owner for the
local stack. Every producer of ebi (the gateway publisher, ``ebi publish``, the simulator,
the canary, :func:`streams.kafkaio.publish`) asks :func:`signer_for` and adds the headers it
returns to each message."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streams.signing.keys import key_id_of, read_private_key
from streams.signing.wire import digest, headers, signed_message

Headers = list[tuple[str, bytes]]
Item = tuple[str, str | bytes | None, Any]   # logical topic, key, record or bytes or None


class Signer(Protocol):
    def sign(self, logical: str, key: bytes | None, value: bytes | None,
             record: Mapping[str, Any] | None = None) -> Headers: ...

    def prepare(self, items: Iterable[Item]) -> None: ...


class KeySigner:
    """Signs every message with one key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.key_id = key_id_of(private)

    @classmethod
    def from_file(cls, path: str | Path) -> KeySigner:
        return cls(read_private_key(path))

    def sign(self, logical: str, key: bytes | None, value: bytes | None,
             record: Mapping[str, Any] | None = None) -> Headers:
        signature = self._private.sign(signed_message(logical, key, digest(value)))
        return headers(self.key_id, signature)

    def prepare(self, items: Iterable[Item]) -> None:
        return None

    def __repr__(self) -> str:
        return f"KeySigner({self.key_id})"


def signer_for(settings: Any, registry: Any = None, catalog: Any = None) -> Signer | None:
    """This process's signer: its own key (``signing_key_file``), else the local dev keyring
    when the stack made one (data_dir/secrets/signing), else None (records go unsigned: a
    worker that verifies dead-letters them BAD_SIGNATURE)."""
    if settings.signing_key_file:
        return KeySigner.from_file(settings.signing_key_file)
    from streams.signing.devkeys import DevKeyring, DevSigner

    keyring = DevKeyring.existing(settings.data_dir)
    if keyring is None:
        return None
    return DevSigner.for_settings(keyring, settings, registry, catalog)

"""The worker's check of a message's signature, before anything else is done with it.

:meth:`Verifier.verify` reads the key id and signature headers, looks the key up (public key
objects are built once, when the registration arrives: :mod:`.keys`), checks that it was
valid when the message reached Kafka, and verifies the Ed25519 signature over the topic, the
key and the SHA-256 of the value (:mod:`.wire`): one hash and one verification per message,
nothing per reading. The result is a :class:`Signed` (who signed, kept with the clean record)
or a :class:`Rejected` (BAD_SIGNATURE; IDENTITY_MISMATCH for a key that may not sign this
record type). Whether the decoded record names the key's owner is :mod:`.identity`'s part.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature

from schemas.catalog.model import Signed as SignedSpec
from streams.signing.keys import REGISTRAR, KeyRef
from streams.signing.wire import HeaderProblem, digest, read_headers, signed_message

BAD_SIGNATURE = "BAD_SIGNATURE"
IDENTITY_MISMATCH = "IDENTITY_MISMATCH"


@dataclass(frozen=True, slots=True)
class Signed:
    """A message whose signature verified: the key and what the clean record keeps."""

    key: KeyRef
    signature: bytes
    digest: bytes | None

    def fields(self) -> dict[str, Any]:
        return {"key_id": self.key.key_id, "signature": self.signature,
                "signed_digest": self.digest}


@dataclass(frozen=True, slots=True)
class Rejected:
    code: str                 # BAD_SIGNATURE or IDENTITY_MISMATCH
    message: str
    key_id: str | None = None
    signature: bytes | None = None
    unknown_key: bool = False  # the key may have been registered just now: sync and retry


class Verifier:
    """``keys``: the live map of registered keys (the reference data's ``keys`` table);
    ``anchors``: the registration authority's keys (:mod:`.trust`)."""

    def __init__(self, keys: Mapping[str, KeyRef], anchors: Mapping[str, KeyRef]) -> None:
        self.keys = keys
        self.anchors = anchors

    def lookup(self, spec: SignedSpec, key_id: str) -> KeyRef | None:
        """Registrations: the trust anchors only (so the answer does not depend on which
        key registrations the reference feed has read yet); the rest: registered keys."""
        if REGISTRAR in spec.kinds:
            return self.anchors.get(key_id)
        return self.keys.get(key_id)

    def verify(self, spec: SignedSpec, logical_topic: str, key: bytes | None,
               value: bytes | None, headers: Iterable[tuple[str, Any]] | Mapping[str, Any]
               | None, arrival_ms: int) -> Signed | Rejected:
        try:
            key_id, signature = read_headers(headers)
        except HeaderProblem as exc:
            return Rejected(BAD_SIGNATURE, f"message on {logical_topic}: {exc}")
        where = f"message on {logical_topic} signed with key {key_id}"
        ref = self.lookup(spec, key_id)
        if ref is None:
            if REGISTRAR in spec.kinds:
                return Rejected(BAD_SIGNATURE, f"{where}: the key is not one of the "
                                "registration authority's (trust anchors)", key_id, signature)
            return Rejected(BAD_SIGNATURE, f"{where}: the key is not a registered key", key_id,
                            signature, unknown_key=True)
        problem = ref.problem_at(arrival_ms)
        if problem is not None:
            return Rejected(BAD_SIGNATURE, f"{where}: {problem}", key_id, signature)
        value_digest = digest(value)
        try:
            ref.check(signature, signed_message(logical_topic, key, value_digest))
        except InvalidSignature:
            return Rejected(BAD_SIGNATURE, f"{where}: the signature does not match the "
                            f"message (altered, or signed for another topic or key) — "
                            f"claimed signer: {ref.owner()}", key_id, signature)
        if ref.kind not in spec.kinds:
            return Rejected(IDENTITY_MISMATCH, f"{where}: a {ref.kind} key ({ref.owner()}) "
                            f"may not sign these records (signers: {', '.join(spec.kinds)})",
                            key_id, signature)
        return Signed(ref, signature, value_digest)

"""What the worker's pipeline asks of the signing rules, per message.

:meth:`SenderCheck.verify` runs before the message is decoded (:mod:`.verify`);
:meth:`SenderCheck.identity` after, with the entity's state: the message key is the record's
key field, the record names the key's owner, and the entity the record continues is the
owner's (:mod:`.identity`); :meth:`SenderCheck.finish` completes the outputs: the signature,
key id and digest (and for evidence types the signed bytes) on the clean record and the dead
letters, and the publication rule (:mod:`.publication`). With ``verifier`` None (the
``verify_signatures = false`` development opt-in) nothing is verified and no AUTHORISED mark
is honoured (nothing proves who sent it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from schemas.catalog.model import RecordType
from schemas.records import Record
from streams.processors.common import Outputs, canary_tag, make_alert
from streams.signing import identity
from streams.signing.publication import AUTHORISED, FLAG, INTERNAL, Publishers, publishers
from streams.signing.verify import Rejected, Signed, Verifier


class SenderCheck:
    def __init__(self, verifier: Verifier | None, raw_policy: Mapping[str, Any]) -> None:
        self.verifier = verifier
        self.publishers: Publishers = publishers(raw_policy)

    def verify(self, kind: RecordType, logical: str, key: bytes | None, value: bytes | None,
               headers: Iterable[tuple[str, Any]] | Mapping[str, Any] | None,
               arrival_ms: int) -> Signed | Rejected | None:
        """None: this record type is not signed, or signatures are not verified."""
        if kind.signed is None or self.verifier is None:
            return None
        return self.verifier.verify(kind.signed, logical, key, value, headers, arrival_ms)

    @staticmethod
    def identity(kind: RecordType, record: Record, key: bytes | None, state: Any,
                 signed: Signed) -> str | None:
        """Why the signed ``record`` is not its signer's to send (None: it is)."""
        spec = kind.signed
        if spec is None:
            return None
        if kind.input.key:
            named = str(record.get(kind.input.key))
            if key is None or key != named.encode():
                shown = "none" if key is None else repr(key[:128].decode("utf-8", "replace"))
                return f"the message key ({shown}) is not the record's {kind.input.key} " \
                       f"{named[:128]!r}"
        why = identity.mismatch(spec, signed.key, record)
        if why is None:
            why = identity.owner_mismatch(spec, signed.key, state)
        return why

    @staticmethod
    def remember_owner(kind: RecordType, record: Record, state: Any) -> None:
        """Keep the owner of an entity a signed record changed in its state (the catalog's
        ``Signed.owner``: e.g. a hidden danger's enterprise)."""
        spec = kind.signed
        if spec is None or not spec.owner or not isinstance(state, dict):
            return
        attribute, name = spec.owner
        field = {"gateway": spec.gateway, "enterprise": spec.enterprise,
                 "region": spec.region}[attribute]
        if field and record.get(field) is not None:
            state[name] = record[field]

    def finish(self, kind: RecordType, record: Record, signed: Signed | None, value: bytes,
               out: Outputs, now_ms: int) -> None:
        """Signature fields on the outputs of one accepted message; the publication rule."""
        spec = kind.signed
        if spec is None:
            return
        clean = out.clean
        if signed is not None:
            fields = signed.fields()
            if clean is not None:
                clean.update(fields)
                if spec.evidence:
                    clean["signed_value"] = value
            for letter in out.dead_letters:
                letter["key_id"] = fields["key_id"]
                letter["signature"] = fields["signature"]
        if clean is not None and spec.publication and \
                record.get(spec.publication) == AUTHORISED:
            self._publication(kind, record, signed, clean, out, now_ms)

    def _publication(self, kind: RecordType, record: Record, signed: Signed | None,
                     clean: Record, out: Outputs, now_ms: int) -> None:
        spec = kind.signed
        assert spec is not None
        region = str(record.get(spec.region, "")) if spec.region else ""
        key = signed.key if signed is not None else None
        if self.publishers.authorised(key, region):
            return
        clean[spec.publication] = INTERNAL
        flags = clean.get("flags")
        if isinstance(flags, list) and FLAG not in flags:
            flags.append(FLAG)
        if clean.get("duplicate"):
            return
        subject = str(record.get(kind.input.key, ""))
        ledger = kind.ledger
        extra = "/".join(str(record.get(n)) for n in ledger.record_id) if ledger else ""
        event = record.get(kind.event_time) if kind.event_time else None
        who = key.owner() if key is not None else "an unverified sender"
        out.alerts.append(make_alert(
            FLAG, kind.name, subject, event if isinstance(event, int) else now_ms, now_ms,
            f"{kind.name} {extra or subject}: marked {AUTHORISED} by {who}, who is not a "
            f"publisher the policy names; stored {INTERNAL}",
            enterprise_id=str(record.get("enterprise_id") or ""),
            region_code=region, id_extra=extra, tag=canary_tag(subject, extra)))


def rejected_fields(why: Rejected) -> dict[str, Any]:
    """The signature fields a dead letter of a rejected message keeps (for a replay)."""
    return {"key_id": why.key_id, "signature": why.signature}

"""The trust anchors: the registration authority's public keys, given to every worker out of
band (a file, not a topic), so that registrations — enterprises, sensors and the senders'
keys themselves — are accepted only when the authority signed them::

    # data_dir/signing/trust.toml (or the signing_trust_file setting)
    [[registrar]]
    public_key = "<base64 of the raw 32-byte Ed25519 public key>"
    valid_from = 2026-01-01T00:00:00Z     # optional
    revoked_at = 2027-01-01T00:00:00Z     # optional
    note = "registration authority, HSM slot 2"

Rotating the authority's key: add the new key, restart the workers, sign with it, then set
``revoked_at`` on the old one.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Any

from streams.settings import Settings
from streams.signing.keys import REGISTRAR, KeyRef, SigningError, public_key, raw_public
from streams.signing.wire import fingerprint

TRUST_FILE = "trust.toml"


def default_trust_file(settings: Settings) -> Path:
    return Path(settings.signing_trust_file).expanduser() if settings.signing_trust_file \
        else settings.data_dir / "signing" / TRUST_FILE


def _ms(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise SigningError(f"{where}: a time needs its zone (e.g. ...Z)")
        return int(value.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise SigningError(f"{where}: expected a time (2026-01-01T00:00:00Z) or epoch ms")


def load_trust(path: str | Path) -> dict[str, KeyRef]:
    """key id -> the registrar's key, from a trust file; SigningError naming the file and the
    entry when it cannot be read."""
    file = Path(path)
    try:
        with open(file, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise SigningError(f"cannot read the trust file {file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SigningError(f"trust file {file} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"registrar"})
    if unknown:
        raise SigningError(f"{file}: unknown section(s) {', '.join(unknown)}; expected "
                           "[[registrar]] entries")
    out: dict[str, KeyRef] = {}
    for n, entry in enumerate(data.get("registrar", [])):
        where = f"{file}: registrar entry {n + 1}"
        try:
            raw = base64.b64decode(str(entry["public_key"]), validate=True)
            public = public_key(raw)
        except KeyError:
            raise SigningError(f"{where}: public_key is required") from None
        except (ValueError, binascii.Error) as exc:
            raise SigningError(f"{where}: public_key: {exc}") from None
        key_id = fingerprint(raw)
        given = entry.get("key_id")
        if given is not None and given != key_id:
            raise SigningError(f"{where}: key_id {given} is not the fingerprint {key_id}")
        out[key_id] = KeyRef(key_id, REGISTRAR, "registrar", "", public,
                             _ms(entry.get("valid_from"), where) or 0,
                             _ms(entry.get("revoked_at"), where))
    return out


def trust_entry(key: KeyRef, note: str = "") -> str:
    """A ``[[registrar]]`` entry for a trust file (public data only)."""
    text = base64.b64encode(raw_public(key.public)).decode()
    lines = ["[[registrar]]", f'key_id = "{key.key_id}"', f'public_key = "{text}"']
    if note:
        lines.append(f"note = {json.dumps(note, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"

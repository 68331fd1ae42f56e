"""Records bound to their sender: Ed25519 signatures on every input message.

A sender signs each message it produces (:mod:`.signer`): the signature covers the logical
topic, the message key and the SHA-256 of the framed value (:mod:`.wire`), and travels with
its key id in the Kafka headers ``ebi-key-id`` and ``ebi-signature``. Public keys are
reference data (the catalog's ``keys`` topic, :mod:`.keys`), registered by the registration
authority, whose own keys are the trust anchors (:mod:`.trust`). The worker verifies each
message before decoding it (:mod:`.verify`) and checks after decoding that the record names
the key's owner (:mod:`.identity`); an AUTHORISED incident report is honoured only from a
publisher the policy names (:mod:`.publication`). ``ebi verify`` re-checks stored records
(:mod:`.stored`); the local stack's keys come from a dev keyring (:mod:`.devkeys`).
See docs/security.md.
"""

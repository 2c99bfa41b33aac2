"""A software WebAuthn authenticator, so tests make real passkey responses without a browser.

`SoftAuthenticator` holds one EC P-256 credential (ES256), like a platform authenticator:
`create(options)` answers navigator.credentials.create() options with attestation "none",
`get(options)` answers navigator.credentials.get() options with a signed assertion. Both
take and return the JSON forms a browser's `PublicKeyCredential.toJSON()` uses (binary
fields base64url), so they go straight into the API. Switches for the unhappy paths:
`origin=` (a phishing site's page), `counting=False` (a synced passkey reporting 0), and
`sign_count=` on `get` (a cloned key reporting a stale counter).

    authenticator = SoftAuthenticator("https://splitgo.test")
    credential = authenticator.create(json.loads(options.options))
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

_UP, _UV, _AT = 0x01, 0x04, 0x40  # authenticator data flags: present, verified, attested


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    """One passkey in software: an EC P-256 key, a credential id and a signature counter."""

    def __init__(self, origin: str, *, counting: bool = True) -> None:
        self.origin = origin
        self.counting = counting
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.sign_count = 0
        self.user_handle: str | None = None  # base64url, as create() was given it

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        fields = {
            "type": kind,
            "challenge": challenge,
            "origin": origin or self.origin,
            "crossOrigin": False,
        }
        return json.dumps(fields).encode()

    def _public_cose(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def create(self, options: dict[str, Any], *, origin: str | None = None) -> dict[str, Any]:
        """The browser's answer to create() with these options (attestation "none")."""
        rp_id_hash = hashlib.sha256(options["rp"]["id"].encode()).digest()
        self.user_handle = options["user"]["id"]
        attested = (
            bytes(16)  # AAGUID: none
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + self._public_cose()
        )
        auth_data = rp_id_hash + bytes([_UP | _UV | _AT]) + (0).to_bytes(4, "big") + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        sign_count: int | None = None,
    ) -> dict[str, Any]:
        """The browser's answer to get() with these options: an assertion over the
        challenge, the counter advanced (when counting) unless `sign_count` is forced."""
        if sign_count is None:
            if self.counting:
                self.sign_count += 1
            sign_count = self.sign_count if self.counting else 0
        rp_id_hash = hashlib.sha256(options["rpId"].encode()).digest()
        auth_data = rp_id_hash + bytes([_UP | _UV]) + sign_count.to_bytes(4, "big")
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": self.user_handle,
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

"""The Web Push channel: a notification to a browser through its push service.

The message is encrypted for the subscription (RFC 8291: ECDH on P-256 with the browser's
`p256dh` key, HKDF keyed by its `auth` secret, AES-128-GCM in the `aes128gcm` content
coding of RFC 8188, one record), and the request carries a VAPID signature (RFC 8292: an
ES256 JWT naming the push service's origin, in `Authorization: vapid t=<jwt>, k=<key>`),
so the push service knows which application server sends it and cannot read it.

`encrypt`, `decrypt` and `vapid_header` are pure functions (tests check them against
RFC 8291's published example). `WebPushChannel.send` makes one POST to one subscription's
endpoint: 2xx is accepted; 404 and 410 say the subscription is gone for good
(`WebPushGone`, the caller forgets it); 429, 408, 5xx and network errors are worth another
try; any other 4xx is permanent. Nothing here logs a payload, an endpoint's path (it is a
capability) or a key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import os
import struct
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from actors.notifications.channels import DeliveryFailed
from actors.notifications.channels.http_answers import ProviderSession, accepted, http_answer

RECORD_SIZE = 4096  # one record: a push message is at most 4096 octets of ciphertext
HEADER_SIZE = 16 + 4 + 1 + 65  # salt, record size, key id length, the sender's key
TAG_SIZE = 16
# what fits in one record with its delimiter octet
MAX_PLAINTEXT = RECORD_SIZE - HEADER_SIZE - TAG_SIZE - 1
JWT_LIFETIME = 12 * 3600  # RFC 8292: at most 24 hours
DEFAULT_TTL = 24 * 3600  # how long the push service keeps a message for an offline browser
_MAX_BODY_BYTES = 16 * 1024
_GONE = frozenset({404, 410})
MAX_ENDPOINT = 1000


def b64u(data: bytes) -> str:
    """base64url without padding, as Web Push keys travel."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    """The bytes of base64url text (padding optional); ValueError when it is not."""
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (ValueError, TypeError) as error:
        raise ValueError(f"not base64url: {error}") from None


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand for one block (every length here is at most 32)."""
    return _hmac(prk, info + b"\x01")[:length]


def public_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    """A P-256 public key as 65 uncompressed octets."""
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def browser_key(p256dh: bytes) -> ec.EllipticCurvePublicKey:
    """A subscription's `p256dh` as a key; ValueError unless a P-256 point."""
    if len(p256dh) != 65 or p256dh[0] != 4:
        raise ValueError("p256dh must be an uncompressed P-256 point (65 octets)")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)


def _keys(
    ecdh_secret: bytes, auth_secret: bytes, ua_public: bytes, as_public: bytes, salt: bytes
) -> tuple[bytes, bytes]:
    """RFC 8291 section 3.4 then RFC 8188 section 2.2: the content key and the nonce."""
    prk_key = _hmac(auth_secret, ecdh_secret)
    ikm = _expand(prk_key, b"WebPush: info\x00" + ua_public + as_public, 32)
    prk = _hmac(salt, ikm)
    cek = _expand(prk, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _expand(prk, b"Content-Encoding: nonce\x00", 12)
    return cek, nonce


def encrypt(
    plaintext: bytes,
    p256dh: bytes,
    auth_secret: bytes,
    *,
    sender: ec.EllipticCurvePrivateKey | None = None,
    salt: bytes | None = None,
) -> bytes:
    """The `aes128gcm` body of a push message for this subscription (RFC 8291).

    `sender` (a fresh key each message) and `salt` (16 random octets) are made here
    unless given: only a test pins them."""
    if len(auth_secret) != 16:
        raise ValueError("the auth secret must be 16 octets")
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError(f"a push message holds at most {MAX_PLAINTEXT} octets")
    receiver = browser_key(p256dh)
    sender = sender or ec.generate_private_key(ec.SECP256R1())
    salt = salt if salt is not None else os.urandom(16)
    as_public = public_bytes(sender.public_key())
    secret = sender.exchange(ec.ECDH(), receiver)
    cek, nonce = _keys(secret, auth_secret, p256dh, as_public, salt)
    header = salt + struct.pack("!IB", RECORD_SIZE, len(as_public)) + as_public
    # one record, the last: the delimiter octet 2, no padding
    return header + AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)


def decrypt(body: bytes, receiver: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> bytes:
    """What `encrypt` sealed, opened with the browser's private key (a browser does this;
    the fake push service of the tests too). ValueError when it does not open."""
    if len(body) < HEADER_SIZE + TAG_SIZE:
        raise ValueError("too short for an aes128gcm push message")
    salt, (record_size, id_length) = body[:16], struct.unpack("!IB", body[16:21])
    as_public = body[21 : 21 + id_length]
    sealed = body[21 + id_length :]
    if id_length != 65 or len(sealed) > record_size:
        raise ValueError("not a single-record aes128gcm push message")
    secret = receiver.exchange(ec.ECDH(), browser_key(as_public))
    ua_public = public_bytes(receiver.public_key())
    cek, nonce = _keys(secret, auth_secret, ua_public, as_public, salt)
    try:
        opened = AESGCM(cek).decrypt(nonce, sealed, None)
    except Exception as error:  # InvalidTag: a wrong key or a changed message
        raise ValueError(f"the message does not open: {type(error).__name__}") from None
    plain = opened.rstrip(b"\x00")
    if not plain.endswith(b"\x02"):
        raise ValueError("no last-record delimiter")
    return plain[:-1]


@dataclass(frozen=True, slots=True)
class VapidKeys:
    """The application server's P-256 key pair (RFC 8292): the private key signs each
    request, the public key is what browsers subscribe with (`applicationServerKey`)."""

    private: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> VapidKeys:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def load(cls, text: str) -> VapidKeys:
        """From a PEM private key, or the 32-octet private value in base64url (what
        web-push tools print); ValueError for anything else."""
        text = text.strip()
        if text.startswith("-----BEGIN"):
            try:
                key = serialization.load_pem_private_key(text.encode(), password=None)
            except (ValueError, TypeError) as error:
                raise ValueError(f"not a PEM private key: {error}") from None
            if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
                key.curve, ec.SECP256R1
            ):
                raise ValueError("the VAPID key must be a P-256 (prime256v1) EC key")
            return cls(key)
        raw = unb64u(text)
        if len(raw) != 32:
            raise ValueError("the VAPID key must be PEM, or 32 octets in base64url")
        try:
            return cls(ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1()))
        except ValueError as error:
            raise ValueError(f"not a P-256 private value: {error}") from None

    def to_pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    @property
    def public_key(self) -> str:
        """The public key as browsers take it: 65 octets in base64url."""
        return b64u(public_bytes(self.private.public_key()))


def origin_of(endpoint: str) -> str:
    """The push service's origin, the JWT's audience."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def vapid_header(keys: VapidKeys, endpoint: str, subject: str, *, now: float | None = None) -> str:
    """`vapid t=<ES256 JWT>, k=<public key>` for a request to this endpoint (RFC 8292)."""
    issued = int(time.time() if now is None else now)
    head = {"typ": "JWT", "alg": "ES256"}
    claims = {"aud": origin_of(endpoint), "exp": issued + JWT_LIFETIME, "sub": subject}
    signing_input = ".".join(
        b64u(json.dumps(part, separators=(",", ":")).encode()) for part in (head, claims)
    )
    der = keys.private.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"vapid t={signing_input}.{b64u(signature)}, k={keys.public_key}"


def endpoint_problem(endpoint: str, *, allow_http: bool) -> str | None:
    """Why a browser's endpoint is refused, or None. A push service is an https URL on a
    public host; a node that accepts an address on this machine or its network would post
    wherever a user points it (`allow_http`, for tests, lets a local http one in)."""
    if len(endpoint) > MAX_ENDPOINT:
        return f"at most {MAX_ENDPOINT} characters"
    parts = urlsplit(endpoint)
    if parts.scheme not in (("https", "http") if allow_http else ("https",)):
        return "a push service's https:// URL"
    if not parts.hostname or "@" in parts.netloc:
        return "a push service's URL with a host and no user name"
    if allow_http:
        return None
    host = parts.hostname
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return "a push service on a public host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_global:
        return "a push service on a public host"
    return None


@dataclass(frozen=True, slots=True)
class PushTarget:
    """One browser's subscription: where to post and the keys to encrypt for."""

    id: str
    endpoint: str
    p256dh: str  # base64url
    auth: str  # base64url


class WebPushDeliveryFailed(DeliveryFailed):
    """The push service did not accept the message; `answer` is its reply."""

    code = "webpush_delivery_failed"


class WebPushGone(WebPushDeliveryFailed):
    """404 or 410: the subscription expired or was withdrawn; forget it."""

    code = "webpush_gone"


class WebPushChannel:
    """Posts encrypted push messages, signed with the node's VAPID keys.

    `subject` is the VAPID `sub` claim (a mailto: or https: URL the push service may
    contact); `ttl` how many seconds the push service keeps a message for a browser that
    is offline; `allow_http` lets endpoints at local http URLs in (tests).
    """

    def __init__(
        self,
        keys: VapidKeys,
        *,
        subject: str,
        http: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        ttl: int = DEFAULT_TTL,
        allow_http: bool = False,
    ) -> None:
        if timeout <= 0:
            raise ValueError("the Web Push timeout must be positive")
        self.keys = keys
        self.subject = subject
        self.allow_http = allow_http
        self._http = ProviderSession(http)
        self._timeout = timeout
        self._ttl = ttl

    @property
    def public_key(self) -> str:
        return self.keys.public_key

    def refuses(self, endpoint: str) -> str | None:
        """Why this endpoint cannot be a subscription's, or None."""
        return endpoint_problem(endpoint, allow_http=self.allow_http)

    async def send(self, target: PushTarget, payload: dict[str, Any], *, urgency: str) -> str:
        """Post `payload` (JSON) to one subscription; the push service's answer.

        Raises WebPushGone (forget the subscription) or WebPushDeliveryFailed."""
        host = urlsplit(target.endpoint).hostname or "?"
        try:
            body = encrypt(
                json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(),
                unb64u(target.p256dh),
                unb64u(target.auth),
            )
        except ValueError as error:
            raise WebPushGone(f"webpush {host}: unusable subscription keys: {error}") from None
        headers = {
            "Authorization": vapid_header(self.keys, target.endpoint, self.subject),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self._ttl),
            "Urgency": urgency,
        }
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http.get().post(
                    target.endpoint, data=body, headers=headers, allow_redirects=False
                )
                async with response:
                    raw = await response.content.read(_MAX_BODY_BYTES)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise WebPushDeliveryFailed(f"webpush {host} {type(error).__name__}: {error}") from None
        answer = http_answer(f"webpush {host}", response, raw)
        if response.status in _GONE:
            raise WebPushGone(answer, permanent=True)
        return accepted(answer, response, WebPushDeliveryFailed)

    async def close(self) -> None:
        """Close the HTTP session, if this channel made it."""
        await self._http.close()

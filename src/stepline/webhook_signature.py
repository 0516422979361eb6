"""Signing webhook deliveries, and checking a signature on the receiving end.

A webhook step with a signing secret sends the header

    X-Stepline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

(the scheme Stripe made familiar). The timestamp is inside what is signed, so a receiver
that refuses old timestamps also refuses a delivery replayed later; one that remembers
the signatures it accepted within its tolerance refuses a replay even sooner.

A receiver in Python checks a delivery with `verify` on the raw body bytes, before parsing
them (any re-serialisation changes the bytes and so the signature).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from stepline.errors import Unauthenticated

SIGNATURE_HEADER = "X-Stepline-Signature"
DEFAULT_TOLERANCE_S = 300
"""How far a delivery's timestamp may be from the receiver's clock, by default."""


class SignatureError(Unauthenticated, ValueError):
    """A delivery's signature header is missing, malformed, wrong or too old."""


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `X-Stepline-Signature` header value for `body`, signed now unless told when."""
    when = int(time.time()) if timestamp is None else timestamp
    return f"t={when},v1={signature(secret, body, when)}"


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check a delivery; returns its timestamp, or raises SignatureError saying why not.

    Several `v1` entries are allowed (a sender rotating its secret signs with both); one
    matching is enough.
    """
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(f"timestamp {value!r} is not an integer") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None:
        raise SignatureError("the header has no timestamp (t=...)")
    if not candidates:
        raise SignatureError("the header has no v1 signature")
    expected = signature(secret, body, timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("the signature does not match the body")
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance_s:
        raise SignatureError(
            f"the timestamp is {abs(age):.0f} s {'old' if age > 0 else 'ahead'}; "
            f"the tolerance is {tolerance_s:g} s"
        )
    return timestamp

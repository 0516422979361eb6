"""stepline.webhook_signature: the header a signed webhook carries, and checking it."""

from __future__ import annotations

import pytest

from stepline.webhook_signature import SignatureError, sign, verify

SECRET = "whsec_test_9c1f"
BODY = b'{"event":"order.paid","amount":700}'
# `printf '%s' '1700000000.<BODY>' | openssl dgst -sha256 -hmac whsec_test_9c1f`
EXPECTED = "aca9a31b822416baa8525ebdc5bac38d36b78cd82f85610a227a52301ee1d1ea"


def test_the_header_is_stripes_scheme() -> None:
    assert sign(SECRET, BODY, 1700000000) == f"t=1700000000,v1={EXPECTED}"


def test_a_good_signature_verifies_and_gives_its_timestamp() -> None:
    header = f"t=1700000000,v1={EXPECTED}"
    assert verify(SECRET, header, BODY, now=1700000100) == 1700000000


def test_one_matching_signature_of_several_is_enough() -> None:
    header = f"t=1700000000,v1={'0' * 64},v1={EXPECTED}"
    assert verify(SECRET, header, BODY, now=1700000000) == 1700000000


@pytest.mark.parametrize(
    ("header", "body", "now", "reason"),
    [
        (None, BODY, 1700000000, "no X-Stepline-Signature header"),
        (f"v1={EXPECTED}", BODY, 1700000000, "no timestamp"),
        ("t=1700000000", BODY, 1700000000, "no v1 signature"),
        (f"t=soon,v1={EXPECTED}", BODY, 1700000000, "is not an integer"),
        (f"t=1700000000,v1={EXPECTED}", BODY + b" ", 1700000000, "does not match"),
        (f"t=1700000001,v1={EXPECTED}", BODY, 1700000000, "does not match"),
        (f"t=1700000000,v1={EXPECTED}", BODY, 1700000301, "301 s old; the tolerance is 300 s"),
        (f"t=1700000000,v1={EXPECTED}", BODY, 1699999000, "1000 s ahead"),
    ],
)
def test_bad_deliveries_are_refused_with_the_reason(
    header: str | None, body: bytes, now: float, reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(SECRET, header, body, now=now)


def test_another_secret_does_not_verify() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify("whsec_other", f"t=1700000000,v1={EXPECTED}", BODY, now=1700000000)

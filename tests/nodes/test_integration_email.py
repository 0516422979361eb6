"""The integration kind's email app, against a real SMTP server on 127.0.0.1 (aiosmtpd) with
STARTTLS or implicit TLS (a certificate made in the test) and AUTH."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from stepline.nodes.integration import IntegrationConfig, IntegrationNode
from stepline.records import ErrorCategory, ErrorStage
from support.integration_steps import perform, perform_error
from support.smtp_server import SmtpStandIn
from support.tls import TlsFiles, make_tls_files

USER, PASSWORD = "robot@acme.io", "smtp-pw-51c9e"

MESSAGE = {
    "from": "Stepline <robot@acme.io>",
    "to": ["ada@example.com", "Bob <bob@example.com>"],
    "cc": "carol@example.com",
    "bcc": ["audit@acme.io"],
    "reply_to": "support@acme.io",
    "subject": "Order 42 approved",
    "text": "Order 42 is approved.",
    "html": "<p>Order <b>42</b> is approved.</p>",
}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp(tls: TlsFiles) -> Iterator[SmtpStandIn]:
    """STARTTLS required, AUTH required, one recipient refused and one deferred."""
    stand_in = SmtpStandIn(
        users={USER: PASSWORD},
        tls_context=tls.server_context(),
        refuse={"nobody@example.com"},
        defer={"busy@example.com"},
    )
    with stand_in:
        yield stand_in


def email_step(port: int, mapping: dict[str, Any] | None = None, **settings: Any) -> dict[str, Any]:
    return {
        "app": "email",
        "email": {"host": "127.0.0.1", "port": port, **settings},
        "input_mapping": MESSAGE if mapping is None else mapping,
    }


def secured(tls: TlsFiles, **more: Any) -> dict[str, Any]:
    return {"username": USER, "password": PASSWORD, "ca_cert": tls.ca_pem, **more}


async def test_starttls_with_auth_sends_the_message(smtp: SmtpStandIn, tls: TlsFiles) -> None:
    output = await perform(email_step(smtp.port, **secured(tls)))

    (mail,) = smtp.messages
    assert mail.tls and mail.login == USER
    assert mail.mail_from == "robot@acme.io"
    assert mail.rcpt_tos == [
        "ada@example.com",
        "bob@example.com",
        "carol@example.com",
        "audit@acme.io",
    ]
    message = mail.message
    assert message["To"] == "ada@example.com, Bob <bob@example.com>"
    assert message["Cc"] == "carol@example.com"
    assert message["Bcc"] is None  # bcc is on the envelope only
    assert message["Reply-To"] == "support@acme.io"
    assert message["Subject"] == "Order 42 approved"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and text.get_content().strip() == "Order 42 is approved."
    assert html is not None and "<b>42</b>" in html.get_content()

    data = output["result"]["data"]
    assert output["result"]["successful"] is True and output["result"]["error"] is None
    assert data == {
        "message_id": message["Message-ID"],
        "from": "Stepline <robot@acme.io>",
        "to": ["ada@example.com", "Bob <bob@example.com>"],
        "cc": ["carol@example.com"],
        "bcc": ["audit@acme.io"],
        "subject": "Order 42 approved",
        "server_reply": "2.0.0 Ok: queued as STANDIN0001",
    }
    assert data["message_id"].endswith("@acme.io>")


async def test_implicit_tls(tls: TlsFiles) -> None:
    with SmtpStandIn(
        users={USER: PASSWORD}, tls_context=tls.server_context(), implicit_tls=True
    ) as smtp:
        mapping = {"from": USER, "to": "ada@example.com", "subject": "hi", "text": "plain"}
        output = await perform(email_step(smtp.port, mapping, security="tls", **secured(tls)))
    (mail,) = smtp.messages
    assert mail.tls and mail.login == USER
    assert mail.message.get_content_type() == "text/plain"
    assert output["result"]["data"]["to"] == ["ada@example.com"]


async def test_html_only_and_plain_smtp_without_auth() -> None:
    with SmtpStandIn() as smtp:
        mapping = {"from": USER, "to": "ada@example.com", "subject": "hi", "html": "<p>x</p>"}
        await perform(email_step(smtp.port, mapping, security="none"))
    (mail,) = smtp.messages
    assert not mail.tls and mail.login is None
    assert mail.message.get_content_type() == "text/html"


async def test_a_wrong_password_is_permanent(smtp: SmtpStandIn, tls: TlsFiles) -> None:
    error = await perform_error(email_step(smtp.port, **secured(tls, password="wrong")))
    assert error.category is ErrorCategory.permanent
    assert error.details.error_code == "535"
    assert error.message.startswith(f"SMTP 127.0.0.1:{smtp.port} refused the login: 535")
    assert smtp.messages == []


async def test_a_refused_recipient_is_permanent_and_nothing_is_sent(
    smtp: SmtpStandIn, tls: TlsFiles
) -> None:
    mapping = {**MESSAGE, "to": "nobody@example.com", "cc": [], "bcc": []}
    error = await perform_error(email_step(smtp.port, mapping, **secured(tls)))
    assert error.category is ErrorCategory.permanent
    assert error.details.error_code == "550"
    assert "refused every recipient, nothing was sent: nobody@example.com: 550" in error.message
    assert error.metadata is not None
    result = error.metadata["result"]
    assert result["successful"] is False and result["error"] == "550"
    assert result["data"]["refused"] == {
        "nobody@example.com": "550 5.1.1 <nobody@example.com>: Recipient address rejected: "
        "User unknown"
    }
    assert smtp.messages == []


async def test_a_deferred_recipient_is_transient(smtp: SmtpStandIn, tls: TlsFiles) -> None:
    mapping = {**MESSAGE, "to": "busy@example.com", "cc": [], "bcc": []}
    error = await perform_error(email_step(smtp.port, mapping, **secured(tls)))
    assert error.category is ErrorCategory.transient
    assert error.details.error_code == "450"


async def test_partly_refused_fails_permanently_and_says_who_got_it(
    smtp: SmtpStandIn, tls: TlsFiles
) -> None:
    mapping = {**MESSAGE, "to": ["ada@example.com", "nobody@example.com"], "cc": [], "bcc": []}
    error = await perform_error(email_step(smtp.port, mapping, **secured(tls)))
    assert error.category is ErrorCategory.permanent  # trying again would send it twice
    (mail,) = smtp.messages
    assert mail.rcpt_tos == ["ada@example.com"]
    assert error.metadata is not None
    data = error.metadata["result"]["data"]
    assert list(data["refused"]) == ["nobody@example.com"]
    assert data["server_reply"] == "2.0.0 Ok: queued as STANDIN0001"


async def test_no_server_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = await perform_error(email_step(port))
    assert error.category is ErrorCategory.transient
    assert error.details.error_code == "connection"


async def test_a_server_that_never_answers_times_out_transient() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        error = await perform_error(email_step(silent.getsockname()[1]), timeout_s=0.3)
    assert error.category is ErrorCategory.transient
    assert "timed out after 0.3 s" in error.message


async def test_an_untrusted_certificate_is_permanent(smtp: SmtpStandIn) -> None:
    error = await perform_error(email_step(smtp.port, username=USER, password=PASSWORD))
    assert error.category is ErrorCategory.permanent
    assert error.details.error_code == "tls_certificate"
    assert "set `ca_cert`" in error.message
    assert smtp.messages == []


async def test_starttls_required_but_not_offered_is_permanent() -> None:
    with SmtpStandIn() as plain:
        error = await perform_error(email_step(plain.port))
    assert error.category is ErrorCategory.permanent
    assert error.details.error_code == "not_supported"
    assert plain.messages == []


async def test_an_invalid_address_is_an_input_error(smtp: SmtpStandIn) -> None:
    error = await perform_error(email_step(smtp.port, {**MESSAGE, "to": "not an address"}))
    assert error.stage is ErrorStage.input_collection
    assert error.category is ErrorCategory.permanent
    assert "not an email address: 'not an address'" in error.message


async def test_a_header_injection_is_refused(smtp: SmtpStandIn) -> None:
    mapping = {**MESSAGE, "subject": "hi\r\nBcc: victim@example.com"}
    error = await perform_error(email_step(smtp.port, mapping))
    assert error.stage is ErrorStage.input_collection
    assert smtp.messages == []


def test_recorded_inputs_hold_no_password(tls: TlsFiles) -> None:
    config = email_step(2525, **secured(tls))
    assert IntegrationNode().recorded_inputs(config) == {
        "app_name": "email",
        "action": "send",
        "input_mapping": MESSAGE,
        "tool_config": {
            "tool_type": "email",
            "host": "127.0.0.1",
            "port": 2525,
            "security": "starttls",
            "username": USER,
            "password": "***",
        },
    }


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"to": "a@b.c", "subject": "s", "text": "t"}, "`from` is required"),
        ({"from": "a@b.c", "subject": "s", "text": "t"}, "no recipient"),
        ({"from": "a@b.c", "to": "a@b.c", "subject": "s"}, "no body"),
        (
            {"from": "a@b.c", "to": "a@b.c", "subject": "s", "text": "t", "body": "b"},
            "unknown field 'body'",
        ),
    ],
)
def test_an_incomplete_message_is_refused_when_the_workflow_is_checked(
    mapping: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        IntegrationConfig.model_validate(email_step(25, mapping))
    assert message in str(caught.value)


def test_an_email_step_has_one_action() -> None:
    with pytest.raises(ValidationError, match="the email app's only action is 'send'"):
        IntegrationConfig.model_validate({**email_step(25), "action": "forward"})


def test_username_without_password_is_refused() -> None:
    with pytest.raises(ValidationError, match="give both `username` and `password`"):
        IntegrationConfig.model_validate(email_step(25, username=USER))


def test_default_ports_follow_the_security() -> None:
    ports = {}
    for security in ("starttls", "tls", "none"):
        config = IntegrationConfig.model_validate(email_step(25, security=security))
        assert config.email is not None
        ports[security] = config.email.model_copy(update={"port": None}).effective_port
    assert ports == {"starttls": 587, "tls": 465, "none": 25}

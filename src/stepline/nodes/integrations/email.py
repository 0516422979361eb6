"""Email: one message over SMTP (STARTTLS, implicit TLS or plain; with or without AUTH),
through aiosmtplib. The step's `data` is what was sent and the server's reply.

How a failure is classified follows SMTP's own reply codes: 4xx means "try again later"
(transient), 5xx means no (permanent); a refused login is permanent, and so is a server
that lacks what the settings require (STARTTLS, AUTH) or a certificate that is not
trusted. No connection, a dropped one and timeouts are transient. A message the server
accepted for some recipients and refused for others has gone out: that step fails
permanently (trying again would send it twice), its data saying who got it.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, Literal

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stepline.nodes.base import NodeError
from stepline.nodes.integrations.common import Call, failure
from stepline.records import ErrorCategory, ErrorStage
from stepline.secrets.redact import MASK

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}

MAPPING_FIELDS = ("from", "to", "cc", "bcc", "reply_to", "subject", "text", "html")
"""The fields of an email's `input_mapping`."""


class SmtpSettings(BaseModel):
    """How to reach the SMTP server."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Default: 587, 465 for tls, 25 for none."
    )
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls: upgrade the connection, and fail if the server cannot; tls: "
        "TLS from the first byte (SMTPS); none: plain text.",
    )
    username: str | None = None
    password: str | None = Field(
        default=None, description='e.g. "{{ secrets.SMTP_PASSWORD }}"; recorded as ***.'
    )
    ca_cert: str | None = Field(
        default=None,
        description="A PEM certificate to trust besides the system's (a private CA).",
    )
    verify_tls: bool = Field(
        default=True, description="Check the server's certificate and name (leave it on)."
    )

    @model_validator(mode="after")
    def _login_whole(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both `username` and `password`, or neither")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]


class EmailFields(BaseModel):
    """The `input_mapping` of an email, templates resolved."""

    model_config = ConfigDict(extra="forbid")

    sender: str = Field(alias="from")
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    reply_to: str | None = None
    subject: str
    text: str | None = None
    html: str | None = None

    @field_validator("to", "cc", "bcc", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("to", "cc", "bcc")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            _check_address(address)
        return value

    @field_validator("sender", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            _check_address(value)
        return value

    @model_validator(mode="after")
    def _complete(self) -> EmailFields:
        if not (self.to or self.cc or self.bcc):
            raise ValueError("no recipient: give `to`, `cc` or `bcc`")
        if self.text is None and self.html is None:
            raise ValueError("no body: give `text`, `html` or both")
        return self

    def envelope_recipients(self) -> list[str]:
        return list(dict.fromkeys(parseaddr(a)[1] for a in [*self.to, *self.cc, *self.bcc]))


def _check_address(value: str) -> None:
    if "\r" in value or "\n" in value or "@" not in parseaddr(value)[1]:
        raise ValueError(f"not an email address: {value!r}")


def mapping_problems(mapping: dict[str, Any]) -> list[str]:
    """What an email's `input_mapping` lacks or has too much of, from its keys alone (its
    values may still be templates)."""
    problems = [
        f"unknown field {key!r} (an email takes {', '.join(MAPPING_FIELDS)})"
        for key in mapping
        if key not in MAPPING_FIELDS
    ]
    for required in ("from", "subject"):
        if required not in mapping:
            problems.append(f"`{required}` is required")
    if not {"to", "cc", "bcc"} & mapping.keys():
        problems.append("no recipient: give `to`, `cc` or `bcc`")
    if not {"text", "html"} & mapping.keys():
        problems.append("no body: give `text`, `html` or both")
    return problems


def recorded_settings(settings: SmtpSettings) -> dict[str, Any]:
    recorded: dict[str, Any] = {
        "host": settings.host,
        "port": settings.effective_port,
        "security": settings.security,
        "username": settings.username,
    }
    if settings.password is not None:
        recorded["password"] = MASK
    if not settings.verify_tls:
        recorded["verify_tls"] = False
    return recorded


async def perform(settings: SmtpSettings, call: Call) -> dict[str, Any]:
    try:
        fields = EmailFields.model_validate(call.input_mapping)
        message = build_message(fields)
    except (ValidationError, ValueError) as exc:
        raise failure(
            f"the email's input_mapping is invalid: {exc}",
            category=ErrorCategory.permanent,
            code="invalid_message",
            stage=ErrorStage.input_collection,
        ) from exc
    sent = {
        "message_id": message["Message-ID"],
        "from": fields.sender,
        "to": fields.to,
        "cc": fields.cc,
        "bcc": fields.bcc,
        "subject": fields.subject,
    }
    try:
        tls_context = _tls_context(settings)
    except ssl.SSLError as exc:
        raise failure(
            f"ca_cert is not a usable PEM certificate: {exc}",
            category=ErrorCategory.permanent,
            code="invalid_ca_cert",
            stage=ErrorStage.input_collection,
        ) from exc
    smtp = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.effective_port,
        use_tls=settings.security == "tls",
        start_tls=settings.security == "starttls",
        tls_context=tls_context,
        timeout=call.timeout_s,
    )
    where = f"SMTP {settings.host}:{settings.effective_port}"
    try:
        async with smtp:
            if settings.username is not None:
                await smtp.login(settings.username, settings.password or "")
            refused, reply = await smtp.send_message(
                message,
                sender=parseaddr(fields.sender)[1],
                recipients=fields.envelope_recipients(),
            )
    except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
        raise _smtp_failure(where, exc, sent, call.timeout_s) from exc
    if refused:
        raise _partly_refused(where, refused, sent, reply)
    return {**sent, "server_reply": reply}


def build_message(fields: EmailFields) -> EmailMessage:
    message = EmailMessage()
    message["From"] = fields.sender
    if fields.to:
        message["To"] = ", ".join(fields.to)
    if fields.cc:
        message["Cc"] = ", ".join(fields.cc)
    if fields.reply_to:
        message["Reply-To"] = fields.reply_to
    message["Subject"] = fields.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    # The sender's domain, not the host's name: make_msgid's default asks DNS for it.
    message["Message-ID"] = make_msgid(domain=parseaddr(fields.sender)[1].rpartition("@")[2])
    if fields.text is not None:
        message.set_content(fields.text)
        if fields.html is not None:
            message.add_alternative(fields.html, subtype="html")
    else:
        message.set_content(fields.html or "", subtype="html")
    return message


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if settings.security == "none":
        return None
    context = ssl.create_default_context()
    if settings.ca_cert:
        context.load_verify_locations(cadata=settings.ca_cert)
    if not settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _smtp_failure(
    where: str, exc: BaseException, sent: dict[str, Any], timeout_s: float
) -> NodeError:
    name = type(exc).__name__
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = {r.recipient: _reply(r) for r in exc.recipients}
        temporary = all(400 <= r.code < 500 for r in exc.recipients)
        listed = "; ".join(f"{who}: {reply}" for who, reply in refusals.items())
        return failure(
            f"{where} refused every recipient, nothing was sent: {listed}",
            category=ErrorCategory.transient if temporary else ErrorCategory.permanent,
            code=str(exc.recipients[0].code) if exc.recipients else "refused",
            data={**sent, "refused": refusals},
            error_type=name,
        )
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return failure(
            f"{where} refused the login: {_reply(exc)}",
            category=ErrorCategory.permanent,
            code=str(exc.code),
            data=sent,
            error_type=name,
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return failure(
            f"{where} answered {_reply(exc)}",
            category=ErrorCategory.transient if 400 <= exc.code < 500 else ErrorCategory.permanent,
            code=str(exc.code),
            data=sent,
            error_type=name,
        )
    if _untrusted_certificate(exc):
        return failure(
            f"{where}: the server's certificate is not trusted ({exc}); set `ca_cert` to "
            "the CA that issued it",
            category=ErrorCategory.permanent,
            code="tls_certificate",
            data=sent,
            error_type=name,
        )
    if type(exc) is aiosmtplib.SMTPException or isinstance(
        exc, aiosmtplib.SMTPNotSupported | ValueError
    ):
        # The server lacks what the settings require (aiosmtplib says so with its base
        # exception: no STARTTLS, no AUTH), or an address cannot be sent as is.
        return failure(
            f"{where}: {exc}",
            category=ErrorCategory.permanent,
            code="not_supported" if isinstance(exc, aiosmtplib.SMTPException) else "invalid",
            data=sent,
            error_type=name,
        )
    if isinstance(exc, TimeoutError):
        message = f"{where} timed out after {timeout_s:g} s"
    else:
        message = f"{where} failed: {name}: {exc}"
    return failure(
        message,
        category=ErrorCategory.transient,
        code="connection",
        data=sent,
        error_type=name,
    )


def _partly_refused(
    where: str,
    refused: dict[str, aiosmtplib.SMTPResponse],
    sent: dict[str, Any],
    reply: str,
) -> NodeError:
    refusals = {who: f"{r.code} {r.message}" for who, r in refused.items()}
    listed = "; ".join(f"{who}: {text}" for who, text in refusals.items())
    return failure(
        f"{where} refused some recipients ({listed}); the others got the message, so it is "
        "not sent again",
        category=ErrorCategory.permanent,
        code=str(next(iter(refused.values())).code),
        data={**sent, "refused": refusals, "server_reply": reply},
        error_type="SMTPRecipientsRefused",
    )


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}"


def _untrusted_certificate(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False

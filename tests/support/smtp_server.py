"""A real SMTP server on 127.0.0.1 (aiosmtpd, in a thread of its own) that keeps what it
receives: optionally with STARTTLS or implicit TLS, AUTH, and recipients it refuses (550)
or defers (450)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    login: str | None
    """The user that authenticated (None: no AUTH)."""
    tls: bool
    """Whether the message came over TLS (STARTTLS or implicit)."""

    @property
    def message(self) -> EmailMessage:
        return cast(EmailMessage, message_from_bytes(self.content, policy=policy.default))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class SmtpStandIn:
    """Start with `with SmtpStandIn(...) as smtp:`; `smtp.messages` is what arrived."""

    users: dict[str, str] = field(default_factory=dict)
    """Logins it accepts; AUTH is required when any is given."""
    tls_context: ssl.SSLContext | None = None
    implicit_tls: bool = False
    """With a TLS context: TLS from the first byte (SMTPS) instead of STARTTLS."""
    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)
    port: int = 0
    host: str = "127.0.0.1"
    log: Callable[[str], None] | None = None
    """Told one line per message (the offline command prints them)."""
    messages: list[ReceivedMail] = field(default_factory=list)
    _controller: _ClosingController | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> SmtpStandIn:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.port = self.port or free_port()
        options: dict[str, Any] = {"auth_require_tls": self.tls_context is not None}
        if self.users:
            options |= {"authenticator": self._authenticate, "auth_required": True}
        if self.tls_context is not None and self.implicit_tls:
            # aiosmtpd counts only STARTTLS as TLS for AUTH: on a connection that is TLS
            # from its first byte, offer AUTH (it checks the login all the same).
            options |= {"ssl_context": self.tls_context, "auth_require_tls": False}
            options["auth_required"] = False
        elif self.tls_context is not None:
            options |= {"tls_context": self.tls_context, "require_starttls": True}
        self._controller = _ClosingController(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname="stand-in",
            **options,
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.close_sessions()
            self._controller.stop()
            self._controller = None

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        if self.users.get(login) != password:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=login)

    def _keep(self, mail: ReceivedMail) -> None:
        with self._lock:
            self.messages.append(mail)
        if self.log is not None:
            subject = mail.message["Subject"]
            self.log(f"smtp {mail.mail_from} -> {', '.join(mail.rcpt_tos)}: {subject!r}")


class _ClosingController(Controller):
    """A Controller that can close the sessions still open before it stops: aiosmtpd's own
    stop cancels their tasks and leaves their sockets to the garbage collector (a
    ResourceWarning, an error in this test suite), e.g. for a client that dropped its
    connection a moment before the test ended."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[SMTP] = []

    def factory(self) -> SMTP:
        session = super().factory()
        self.sessions.append(session)
        return session

    def close_sessions(self) -> None:
        async def close() -> None:
            for session in self.sessions:
                transport = session.transport
                if transport is not None and not transport.is_closing():
                    transport.abort()
            for _ in range(3):
                await asyncio.sleep(0)  # the aborted transports close their sockets

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)


class _Handler:
    def __init__(self, stand_in: SmtpStandIn) -> None:
        self.stand_in = stand_in

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.stand_in.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.stand_in.defer:
            return f"450 4.2.1 <{address}>: Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        login = session.auth_data if isinstance(session.auth_data, str) else None
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            content=content,
            login=login,
            # The transport's, not session.ssl: aiosmtpd sets that after STARTTLS only.
            tls=server.transport is not None
            and server.transport.get_extra_info("ssl_object") is not None,
        )
        self.stand_in._keep(mail)
        return f"250 2.0.0 Ok: queued as STANDIN{len(self.stand_in.messages):04d}"

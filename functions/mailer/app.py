"""SNS -> a mail through SMTP: the topic message is the body, its Subject the subject.

The SMTP server comes from ``SMTP_HOST`` / ``SMTP_PORT`` (template parameters
``SmtpHost`` / ``SmtpPort``); with no host set the handler sends nothing and
says so, so the stack runs where no mail server exists. One SMTP connection
serves the whole batch.

SNS itself bounds a Subject (under 100 printable ASCII characters, no line
breaks) and a message (256 KB); the handler checks the same, so a record that
did not come from SNS can't inject headers or send a huge mail.
"""

from __future__ import annotations

import os
import smtplib
import time
from email.message import EmailMessage
from functools import cache
from typing import Any

MAX_SUBJECT = 100
MAX_MESSAGE_BYTES = 256 * 1024
DEFAULT_SUBJECT = "Notification"


class BadNotification(ValueError):
    """A record this handler will not mail; the text says why."""


def mail_of(record: dict[str, Any], sender: str, recipient: str) -> EmailMessage:
    """The mail for one SNS record."""
    try:
        sns = record["Sns"]
        message, subject = sns["Message"], sns.get("Subject")
        message_id = sns["MessageId"]
    except (KeyError, TypeError):
        raise BadNotification("not an SNS record (no Sns.Message / Sns.MessageId)") from None
    if not isinstance(message, str):
        raise BadNotification(f"Sns.Message is a {type(message).__name__}, not a string")
    if len(message.encode()) > MAX_MESSAGE_BYTES:
        raise BadNotification(f"message {message_id}: over {MAX_MESSAGE_BYTES} bytes")
    subject = subject or DEFAULT_SUBJECT
    if (
        not isinstance(subject, str)
        or len(subject) > MAX_SUBJECT
        or not all(" " <= c <= "~" for c in subject)
    ):
        raise BadNotification(
            f"message {message_id}: Subject must be under {MAX_SUBJECT} printable ASCII characters"
        )
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, recipient, subject
    mail["X-SNS-MessageId"] = str(message_id)
    if sns.get("TopicArn"):
        mail["X-SNS-TopicArn"] = str(sns["TopicArn"])
    mail.set_content(message)
    return mail


def smtp_address() -> tuple[str, int] | None:
    """Where to send, from the environment; ``None`` when no server is configured."""
    host = os.environ.get("SMTP_HOST", "").strip()
    port = os.environ.get("SMTP_PORT", "").strip() or "25"
    if not host:
        return None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise BadNotification(f"SMTP_PORT {port!r} is not a port number")
    return host, int(port)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sender = os.environ.get("MAIL_FROM", "lambdabus@localhost")
    recipient = os.environ.get("MAIL_TO", "ops@localhost")
    mails = [mail_of(record, sender, recipient) for record in event.get("Records") or []]
    address = smtp_address()
    if address is None:
        print(f"SMTP_HOST is not set: {len(mails)} mail(s) not sent")
        return {"sent": 0}
    with smtplib.SMTP(*address, timeout=10) as smtp:
        for mail in mails:
            smtp.send_message(mail)
            _report(context, mail)
    return {"sent": len(mails)}


STORE_URL = os.environ.get("DEMO_STORE_URL", "")


@cache
def _store() -> Any:
    import redis

    return redis.Redis.from_url(STORE_URL)


def _report(context: Any, mail: EmailMessage) -> None:
    """Tell the demo (``demo:results`` of DEMO_STORE_URL) what happened, when it listens."""
    if STORE_URL:
        _store().xadd(
            "demo:results",
            {
                "function": context.function_name,
                "key": f"notification {mail['X-SNS-MessageId'][:8]}",
                "outcome": f"mailed {mail['Subject']!r} to {mail['To']}",
                "at": repr(time.time()),
            },
        )

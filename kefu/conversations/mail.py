"""Inbound e-mail: a mail becomes an `Inbound` and is stored on the e-mail channel it was sent to.

Mail arrives two ways: the built-in SMTP listener (`kefu smtp`, `InboundMailHandler`, the
company's MX or a forwarding rule points at it) or by polling a mailbox over IMAP (`imap_poll`,
run by the worker every few minutes). Either way `mail_receive` stores it once per Message-ID.

Threading: a customer's answer names our earlier mails in In-Reply-To/References. Those ids are
resolved here to the conversation that holds them (its first inbound mail, any later inbound
mail, or one of our replies, whose Message-ID the delivery stored) and the conversation's
thread_key is added to the refs, so `message_receive` finds the conversation even when it was
closed (and reopens it).
"""

import base64
import contextlib
import dataclasses
import hashlib
import imaplib
import logging
import mimetypes
import re
import socket
import ssl
from collections.abc import Iterable, Iterator
from email import policy
from email.header import decode_header
from email.message import Message as MailPart
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from pathlib import PurePosixPath

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils.translation import gettext as _

from kefu.conversations.adapters import Inbound, Sender
from kefu.conversations.models import Channel, Message
from kefu.conversations.services import Received, message_receive
from kefu.core.attachments import attachment_is_accepted
from kefu.core.exceptions import ValidationFailed

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 10
MAX_BODY_CHARS = 50_000
MAX_THREAD_REFS = 50
IMAP_BATCH = 100  # mails fetched in one poll; the rest come with the next one
IMAP_TIMEOUT = 30
_MSGID_RE = re.compile(r"<([^<>\s]+)>")
# Declared Chinese charsets are decoded with their superset: mail clients often label GBK text
# (and GB18030 text) as gb2312.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "x-euc-cn": "gb18030",
    "windows-936": "gb18030",
    "ks_c_5601-1987": "cp949",
    "unknown-8bit": "utf-8",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
}


# --- Parsing ---------------------------------------------------------------------------------
def _charsets(declared: str | None) -> list[str]:
    found = []
    if declared:
        name = declared.strip().strip('"').lower().split("*", 1)[0]
        found.append(_CHARSET_ALIASES.get(name, name))
    found += ["utf-8", "gb18030"]
    return list(dict.fromkeys(found))


def _text_of(data: bytes, declared: str | None) -> str:
    """Bytes in the declared charset, else UTF-8, else GB18030; never an exception."""
    for charset in _charsets(declared):
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", errors="replace")


def _header_text(value: str) -> str:
    """A header as text: RFC 2047 words decoded (GBK labelled gb2312 included) and raw 8-bit
    headers (UTF-8 or GBK, as some clients send them) read too."""
    if not value:
        return ""
    try:
        parts = decode_header(value)
    except Exception:  # a broken encoded word: read the header as it is
        parts = [(value, None)]
    text = []
    for part, charset in parts:
        if isinstance(part, str):
            text.append(_unescaped(part))
        elif charset is None:
            text.append(_unescaped(part.decode("raw-unicode-escape", errors="replace")))
        else:
            text.append(_text_of(part, charset))
    return re.sub(r"\s*\r?\n\s*", " ", "".join(text)).strip()


def _unescaped(text: str) -> str:
    """Raw 8-bit bytes the parser kept as surrogates, read as UTF-8 or GBK."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _text_of(text.encode("utf-8", "surrogateescape"), None)
    return text


def _raw_header(message: MailPart, name: str) -> str:
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _raw_headers(message: MailPart, name: str) -> list[str]:
    return [str(value) for key, value in message.raw_items() if key.lower() == name.lower()]


def _message_ids(value: str) -> list[str]:
    found = _MSGID_RE.findall(value or "")
    if not found and value.strip() and " " not in value.strip():
        found = [value.strip().strip("<>")]
    return [item[:250] for item in found]


def _valid_email(address: str) -> bool:
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


class _HtmlText(HTMLParser):
    """HTML to readable text: blocks become lines, scripts and styles vanish."""

    BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"}
        | {"table", "ul", "ol", "section", "article"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head", "title"):
            self._skip = max(self._skip - 1, 0)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self.parts).replace("\xa0", " ").splitlines()]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return parser.text()


# Where the quoted history of a reply starts (Gmail, Outlook, Apple Mail, QQ Mail, 163...).
_QUOTE_START = re.compile(
    r"^(On .{4,300} wrote:"
    r"|在\s?.{2,300}写道[:：]"
    r"|-{2,}\s*(Original Message|原始邮件|原始郵件|回复的原邮件)\s*-{2,}"
    r"|_{10,})\s*$",
    re.IGNORECASE,
)
# Foxmail and Outlook quote with a header block: "发件人：…" / "From: …" then the date line.
_QUOTE_HEADER = re.compile(r"^(From|发件人|寄件者)\s*[:：]", re.IGNORECASE)
_QUOTE_HEADER_NEXT = re.compile(r"^(Sent|Date|发送时间|时间|日期|寄件日期)\s*[:：]", re.IGNORECASE)


def _quote_starts(lines: list[str], index: int) -> bool:
    line = lines[index].strip()
    if _QUOTE_START.match(line):
        return True
    following = lines[index + 1].strip() if index + 1 < len(lines) else ""
    return bool(_QUOTE_HEADER.match(line) and _QUOTE_HEADER_NEXT.match(following))


def _reply_strip(text: str) -> str:
    """The new part of a reply: the quoted history under it is cut (it is in the conversation
    already). Text that would end up empty is kept whole."""
    lines = text.splitlines()
    for index in range(1, len(lines)):
        if _quote_starts(lines, index):
            lines = lines[:index]
            break
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith(">")):
        lines.pop()
    stripped = "\n".join(lines).strip()
    return stripped or text


def _leaf_parts(part: MailPart) -> Iterator[MailPart]:
    """Every non-multipart part; an attached mail (message/rfc822) is one part, not opened."""
    if part.is_multipart() and part.get_content_type() != "message/rfc822":
        for sub in part.get_payload():
            yield from _leaf_parts(sub)
    else:
        yield part


def _filename(part: MailPart, index: int) -> str:
    name = _header_text(part.get_filename() or "")
    name = PurePosixPath(name.replace("\\", "/")).name.strip().lstrip(".")
    if not name:
        content_type = part.get_content_type()
        extension = ".eml" if content_type == "message/rfc822" else ""
        extension = extension or mimetypes.guess_extension(content_type) or ".bin"
        name = f"attachment-{index}{extension}"
    if len(name) > 200:
        stem, dot, extension = name.rpartition(".")
        name = (stem[: 190 - len(extension)] + dot + extension) if dot else name[:200]
    return name


def _payload_bytes(part: MailPart) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner:
            return inner[0].as_bytes(policy=policy.SMTP)
        return b""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _is_attachment(part: MailPart) -> bool:
    """Every part but the plain and HTML text of the mail is a file."""
    if part.get_content_disposition() == "attachment":
        return True
    return part.get_content_type() not in ("text/plain", "text/html")


def mail_parse(raw: bytes) -> Inbound:
    """Read a mail (bytes as received) into an `Inbound`: the sender by address, the subject, the
    text (HTML turned into text when there is no plain part), attachments, its Message-ID and
    the ids it answers. Raises ValidationFailed when no sender address can be read."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    from_raw = _raw_header(message, "From") or _raw_header(message, "Sender")
    name_raw, address = parseaddr(re.sub(r"\r?\n[ \t]*", " ", from_raw))
    address = address.strip().lower()
    if "@" not in address:
        raise ValidationFailed({"from": [_("The mail has no sender address.")]})
    name = _header_text(name_raw).strip().strip('"')
    subject = _header_text(_raw_header(message, "Subject"))

    message_ids = _message_ids(_raw_header(message, "Message-ID"))
    external_id = message_ids[0] if message_ids else "sha256:" + hashlib.sha256(raw).hexdigest()
    refs = _message_ids(" ".join(_raw_headers(message, "References")))
    refs += _message_ids(" ".join(_raw_headers(message, "In-Reply-To")))
    thread_refs = tuple(dict.fromkeys(ref for ref in refs if ref != external_id))
    thread_refs = thread_refs[-MAX_THREAD_REFS:]

    plain, html = [], []
    attachments: list[tuple[str, bytes]] = []
    skipped: list[str] = []
    refused: list[str] = []
    for index, part in enumerate(_leaf_parts(message), start=1):
        if _is_attachment(part):
            name_of_part = _filename(part, index)
            content = _payload_bytes(part)
            if not content:
                continue
            if not attachment_is_accepted(name_of_part):
                refused.append(name_of_part)
                continue
            if len(attachments) >= MAX_ATTACHMENTS or len(content) > settings.ATTACHMENT_MAX_BYTES:
                skipped.append(name_of_part)
                continue
            attachments.append((name_of_part, content))
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = _text_of(payload, part.get_content_charset())
        (html if part.get_content_subtype() == "html" else plain).append(text)
    if plain:
        body = "\n\n".join(chunk.strip() for chunk in plain if chunk.strip())
    else:
        body = "\n\n".join(html_to_text(chunk) for chunk in html)
    body = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if thread_refs:
        body = _reply_strip(body)
    if len(body) > MAX_BODY_CHARS:
        body = body[: MAX_BODY_CHARS - 1] + "…"
    if skipped:
        note = _("Attachments not kept (too large or too many): %(names)s") % {
            "names": ", ".join(skipped)
        }
        body = f"{body}\n\n[{note}]".strip()
    if refused:
        note = _("Attachments not kept (file type not accepted): %(names)s") % {
            "names": ", ".join(refused)
        }
        body = f"{body}\n\n[{note}]".strip()
    if not body and not attachments:
        body = subject
    data: dict = {"subject": subject}
    for header in ("To", "Cc"):
        addresses = [a.lower() for _n, a in getaddresses(_raw_headers(message, header)) if a]
        if addresses:
            data[header.lower()] = addresses[:20]
    auto = _raw_header(message, "Auto-Submitted").strip().lower()
    if (auto and auto != "no") or address.startswith(("mailer-daemon@", "postmaster@")):
        data["auto_submitted"] = True
    if skipped:
        data["skipped_attachments"] = skipped
    if refused:
        data["refused_attachments"] = refused
    return Inbound(
        sender=Sender(
            key=address[:200],
            name=name[:100],
            email=address if _valid_email(address) else "",
        ),
        body=body,
        kind=Message.Kind.TEXT if body else Message.Kind.FILE,
        external_id=external_id,
        subject=subject[:200],
        thread_refs=thread_refs,
        data=data,
        attachments=tuple(attachments),
    )


# --- Storing ---------------------------------------------------------------------------------
def email_channels_for(addresses: Iterable[str]) -> list[Channel]:
    """The active e-mail channels whose mailbox is one of the addresses (case does not count)."""
    wanted = {parseaddr(a)[1].strip().lower() for a in addresses} - {""}
    if not wanted:
        return []
    channels = Channel.objects.filter(kind=Channel.Kind.EMAIL, is_active=True).order_by("pk")
    return [c for c in channels if c.setting("address").strip().lower() in wanted]


def _thread_resolve(channel: Channel, inbound: Inbound) -> Inbound:
    """Add the thread_key of the conversation the mail answers to its refs: the refs may name
    any mail of it (a later inbound one, or one of our replies), not only the first."""
    if not inbound.thread_refs:
        return inbound
    refs = list(inbound.thread_refs)
    rows = (
        Message.objects.filter(channel=channel, conversation__identity__key=inbound.sender.key)
        .filter(
            Q(external_id__in=refs) | Q(direction=Message.Direction.OUT, data__provider_id__in=refs)
        )
        .exclude(conversation__thread_key="")
        .order_by("-conversation_id")
        .values_list("conversation__thread_key", flat=True)
    )
    extra = [key for key in dict.fromkeys(rows[:20]) if key not in refs]
    if not extra:
        return inbound
    return dataclasses.replace(inbound, thread_refs=(*inbound.thread_refs, *extra))


def mail_receive(
    raw: bytes, rcpt_tos: Iterable[str] = (), *, channel: Channel | None = None
) -> list[Received]:
    """Store a mail on the e-mail channel it was sent to: the channel given (a polled mailbox),
    else the channels whose address is among the envelope recipients (or, without an envelope,
    the To and Cc headers). A mail stored before (same Message-ID) is not stored again."""
    inbound = mail_parse(raw)
    if channel is not None:
        channels = [channel]
    else:
        addresses = list(rcpt_tos)
        if not addresses:
            addresses = [*inbound.data.get("to", []), *inbound.data.get("cc", [])]
        channels = email_channels_for(addresses)
    results = []
    for target in channels:
        if inbound.sender.key == target.setting("address").strip().lower():
            log.warning("Mail from the channel's own address %s ignored (a loop?)", target)
            continue
        results.append(message_receive(channel=target, inbound=_thread_resolve(target, inbound)))
    return results


# --- The SMTP listener -----------------------------------------------------------------------
# The listener's database work runs in one worker thread (sync_to_async), which opens a
# connection per mail and closes it after: a mail every few seconds does not need a pool, and a
# connection is never left behind in a thread nobody else looks after.
def _rcpt_known(address: str) -> bool:
    close_old_connections()
    try:
        return bool(email_channels_for([address]))
    finally:
        connection.close()


def _data_store(raw: bytes, rcpt_tos: list[str]) -> list[Received]:
    close_old_connections()
    try:
        return mail_receive(raw, rcpt_tos)
    finally:
        connection.close()


_SMTP_REASONS = {"from": "no sender address", "sender": "no sender address", "body": "empty mail"}


class InboundMailHandler:
    """aiosmtpd handler: takes mail for the active e-mail channels' addresses only, answers 250
    once the mail is stored, 451 on a passing failure (the sending server tries again later),
    552 when it is too large and 554 when it cannot be read (no sender)."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes or settings.INBOUND_MAIL_MAX_BYTES

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        try:
            known = await sync_to_async(_rcpt_known)(address)
        except Exception:
            log.exception("Looking up the mailbox %s failed", address)
            return "451 4.3.0 Temporary failure, try again later"
        if not known:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        if len(raw) > self.max_bytes:
            return "552 5.3.4 Message too big"
        try:
            await sync_to_async(_data_store)(raw, list(envelope.rcpt_tos))
        except ValidationFailed as exc:
            # SMTP replies are ASCII: name the fields, not the (translated) messages.
            reason = ", ".join(_SMTP_REASONS.get(f, f"invalid {f}") for f in exc.errors)
            return f"554 5.6.0 Mail not accepted: {reason or 'invalid mail'}"
        except Exception:
            log.exception("Storing a mail from %s failed", envelope.mail_from)
            return "451 4.3.0 Temporary failure, try again later"
        return "250 OK"


def smtp_controller(host: str, port: int):
    """The SMTP listener for `kefu smtp` (and tests): call start() and stop() on it."""
    from aiosmtpd.controller import Controller

    handler = InboundMailHandler()
    return Controller(
        handler,
        hostname=host,
        port=port,
        data_size_limit=handler.max_bytes,
        enable_SMTPUTF8=True,
        server_hostname=socket.gethostname(),
    )


# --- IMAP polling ----------------------------------------------------------------------------
class MailboxUnavailable(Exception):
    """The IMAP server could not be reached, refused the login or has no such folder."""


def _imap_connect(channel: Channel) -> imaplib.IMAP4:
    use_ssl = channel.config.get("imap_ssl", True) not in (False, "false", "0", 0, "")
    host = channel.setting("imap_host")
    try:
        port = int(channel.config.get("imap_port") or (993 if use_ssl else 143))
    except (TypeError, ValueError):
        raise MailboxUnavailable(f"imap_port: {channel.config.get('imap_port')!r}") from None
    try:
        if use_ssl:
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                host, port, ssl_context=ssl.create_default_context(), timeout=IMAP_TIMEOUT
            )
        else:
            conn = imaplib.IMAP4(host, port, timeout=IMAP_TIMEOUT)
        user, password = channel.setting("imap_user"), channel.setting("imap_password")
        if (user + password).isascii():
            conn.login(user, password)
        else:  # LOGIN takes ASCII only; SASL PLAIN carries UTF-8
            conn.authenticate("PLAIN", lambda _challenge: f"\0{user}\0{password}".encode())
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxUnavailable(f"{host}:{port}: {exc}") from exc
    return conn


def _imap_folder(folder: str) -> str:
    """A folder name as IMAP wants it: modified UTF-7 (RFC 3501 5.1.3) for names such as
    "客服邮件", quoted when it has spaces or specials."""
    encoded, pending = [], []

    def flush() -> None:
        if pending:
            chunk = base64.b64encode("".join(pending).encode("utf-16-be")).decode()
            encoded.append("&" + chunk.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in folder:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            encoded.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    name = "".join(encoded)
    if not re.search(r'[\s"\\(){%*]', name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fetched_bytes(data: list) -> bytes | None:
    for item in data or ():
        if isinstance(item, tuple) and len(item) >= 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def imap_poll(channel: Channel) -> int:
    """Fetch the unread mail of the channel's IMAP mailbox and store it; a mail is marked read
    only once stored (a failure leaves it unread for the next poll). Returns how many new
    messages were stored. Raises MailboxUnavailable when the mailbox cannot be opened."""
    conn = _imap_connect(channel)
    stored = 0
    try:
        folder = channel.setting("imap_folder", "INBOX")
        status, _data = conn.select(_imap_folder(folder))
        if status != "OK":
            raise MailboxUnavailable(f"folder {folder!r}: {_data!r}")
        status, data = conn.uid("SEARCH", None, "UNSEEN")
        if status != "OK":
            raise MailboxUnavailable(f"search: {data!r}")
        uids = (data[0] or b"").split()[:IMAP_BATCH]
        for uid in uids:
            status, data = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = _fetched_bytes(data) if status == "OK" else None
            if raw is None:
                log.warning("IMAP %s: mail %s could not be fetched", channel, uid)
                continue
            if len(raw) > settings.INBOUND_MAIL_MAX_BYTES:
                log.warning("IMAP %s: mail %s is too large (%s bytes)", channel, uid, len(raw))
            else:
                try:
                    results = mail_receive(raw, channel=channel)
                except ValidationFailed as exc:
                    log.warning("IMAP %s: mail %s cannot be read: %s", channel, uid, exc.errors)
                except Exception:
                    log.exception("IMAP %s: storing mail %s failed; it stays unread", channel, uid)
                    continue
                else:
                    stored += sum(1 for r in results if r.created)
            conn.uid("STORE", uid, "+FLAGS", "(\\Seen)")
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxUnavailable(str(exc)) from exc
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()
    return stored


def imap_channels() -> list[Channel]:
    """Active e-mail channels with an IMAP mailbox to poll."""
    channels = Channel.objects.filter(kind=Channel.Kind.EMAIL, is_active=True).order_by("pk")
    return [c for c in channels if c.setting("imap_host")]


__all__ = [
    "InboundMailHandler",
    "MailboxUnavailable",
    "email_channels_for",
    "html_to_text",
    "imap_channels",
    "imap_poll",
    "mail_parse",
    "mail_receive",
    "smtp_controller",
]

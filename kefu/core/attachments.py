"""Files people send Kefu: one list of accepted types for tickets, chat and inbound mail, and one
way to hand a stored file back to a browser.

The types are settings.ATTACHMENT_EXTENSIONS (KEFU_ATTACHMENT_EXTENSIONS): photos, PDF, Office
documents, text, recordings and videos. Programs, web pages, SVG and archives are not on it: a
file a customer or an agent sends is opened by someone else, often with one click.

A stored file goes back to the browser as a download (Content-Disposition: attachment,
application/octet-stream), except raster images and PDF, which open in the browser under their
own type; with X-Content-Type-Options: nosniff the browser never guesses another type, so a file
named .png that holds HTML is not run as a page.
"""

import mimetypes
from pathlib import PurePath
from typing import IO

from django.conf import settings
from django.http import FileResponse
from django.utils.translation import gettext as _

from kefu.core.exceptions import ValidationFailed

# Shown in the browser; everything else is downloaded.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})


def attachment_extensions() -> list[str]:
    """The accepted suffixes, sorted (".jpg", ".pdf", ...)."""
    return sorted(settings.ATTACHMENT_EXTENSIONS)


def attachment_suffix(name: str) -> str:
    return PurePath(name or "").suffix.lower()


def attachment_is_accepted(name: str) -> bool:
    return attachment_suffix(name) in settings.ATTACHMENT_EXTENSIONS


def attachment_refusal(name: str) -> str:
    """Why the file is refused, naming it and the types that are accepted."""
    return _("%(name)s: files of type %(type)s are not accepted. Accepted: %(types)s.") % {
        "name": PurePath(name or "").name or "?",
        "type": attachment_suffix(name) or _("(no extension)"),
        "types": " ".join(attachment_extensions()),
    }


def attachment_check(name: str, size: int, *, field: str = "file") -> None:
    """Raise ValidationFailed naming the field and the file when its type is not accepted or it
    is larger than KEFU_ATTACHMENT_MAX_BYTES."""
    if not attachment_is_accepted(name):
        raise ValidationFailed({field: [attachment_refusal(name)]})
    if size > settings.ATTACHMENT_MAX_BYTES:
        raise ValidationFailed(
            {
                field: [
                    _("%(name)s is larger than %(mb)s MB.")
                    % {
                        "name": PurePath(name).name,
                        "mb": settings.ATTACHMENT_MAX_BYTES // (1024 * 1024),
                    }
                ]
            }
        )


def attachment_content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def attachment_response(
    handle: IO[bytes], *, name: str, content_type: str = "", inline: bool = True
) -> FileResponse:
    """The file for a browser: raster images and PDF in the browser (unless `inline` is False),
    anything else as a download the browser cannot take for a page."""
    content_type = content_type or attachment_content_type(name)
    shown = inline and content_type in INLINE_TYPES
    response = FileResponse(
        handle,
        as_attachment=not shown,
        filename=PurePath(name).name or "file",
        content_type=content_type if shown else "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    if response["Content-Type"] != "application/pdf":  # a sandbox would stop the PDF viewer
        # Whatever a browser makes of it, it runs nothing from it and loads nothing for it.
        response["Content-Security-Policy"] = (
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
        )
    return response

"""Files of chat messages behind signed links: the customer's widget, a WeChat or e-mail
customer and the agents open them by a link that cannot be guessed; nothing under MEDIA_ROOT is
served directly."""

from django.core import signing
from django.http import FileResponse, Http404, HttpRequest
from django.urls import path, reverse

from kefu.conversations.models import Message
from kefu.core.attachments import attachment_response

SALT = "kefu.conversations.file"
MAX_AGE = 60 * 60 * 24 * 90  # links in mails and WeChat messages stay good for 90 days


def attachment_url(message: Message, *, absolute: bool = False) -> str:
    if not message.attachment:
        return ""
    token = signing.dumps(message.pk, salt=SALT)
    url = reverse("conversation_files:attachment", kwargs={"token": token})
    if absolute:
        from django.conf import settings

        return f"{settings.BASE_URL}{url}"
    return url


def attachment_download(request: HttpRequest, token: str) -> FileResponse:
    try:
        message_id = signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature:
        raise Http404 from None
    message = Message.objects.filter(pk=message_id).exclude(attachment="").first()
    if message is None or message.direction == Message.Direction.NOTE:
        raise Http404
    response = attachment_response(
        message.attachment.open("rb"),
        name=message.attachment_name or message.attachment.name.rsplit("/", 1)[-1],
        inline=message.kind == Message.Kind.IMAGE,
    )
    response["Cache-Control"] = "private, max-age=3600"
    return response


app_name = "conversation_files"
urlpatterns = [path("<str:token>/", attachment_download, name="attachment")]

"""Channel adapters: one module per kind of channel, all with `send(channel, message)`."""

from kefu.conversations.adapters.base import ChannelAdapter, DeliveryFailed, Inbound, Sender

__all__ = ["ChannelAdapter", "DeliveryFailed", "Inbound", "Sender", "adapter_for"]


class _InApp:
    """Web chat, phone and walk-in: the message reaches the customer through Kefu itself (the
    widget's socket) or is a record of what was said; nothing leaves the building."""

    kind = "in_app"

    def send(self, channel, message) -> str:
        return ""


def adapter_for(channel) -> ChannelAdapter:
    from kefu.conversations.models import Channel

    if channel.kind == Channel.Kind.WECHAT:
        from kefu.conversations.adapters.wechat import WeChatAdapter

        return WeChatAdapter()
    if channel.kind == Channel.Kind.EMAIL:
        from kefu.conversations.adapters.email import EmailAdapter

        return EmailAdapter()
    if channel.kind == Channel.Kind.WEBHOOK:
        from kefu.conversations.adapters.webhook import WebhookAdapter

        return WebhookAdapter()
    return _InApp()

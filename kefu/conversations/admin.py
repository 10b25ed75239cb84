"""Consultation set-up for administrators: channels (with their secrets and addresses) and inbox
queues. Conversations, messages and calls are shown read-mostly for support; agents work them in
the inbox and on the consultation pages, not here."""

import json

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kefu.conversations import services
from kefu.conversations.models import (
    AgentStatus,
    CallRecord,
    Channel,
    Conversation,
    InboxQueue,
    Message,
    QuickReply,
)
from kefu.core.json_body import JSON_MAX_DEPTH, json_depth_exceeds


class PrettyJSONField(forms.JSONField):
    """The channel's settings as indented JSON, Chinese left readable; nested no deeper than
    any JSON body Kefu reads (a deeper one would exhaust the recursion of json.loads)."""

    def to_python(self, value):
        if isinstance(value, str) and json_depth_exceeds(value.encode()):
            raise forms.ValidationError(
                _("At most %(depth)s levels of nesting.") % {"depth": JSON_MAX_DEPTH},
                code="invalid",
            )
        return super().to_python(value)

    def bound_data(self, data, initial):
        if isinstance(data, str) and json_depth_exceeds(data.encode()):
            return forms.fields.InvalidJSONInput(data)
        return super().bound_data(data, initial)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, cls=self.encoder)


class ChannelForm(forms.ModelForm):
    config = PrettyJSONField(
        label=_("settings"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80, "class": "json-settings"}),
        help_text=_(
            "JSON. WeChat: appid, appsecret, token, aes_key (safe mode), window_seconds; "
            "webhook: secret, outbound_url; e-mail: address and its IMAP account."
        ),
    )

    class Media:
        # No style attribute: the Content-Security-Policy applies none.
        css = {"all": ["kefu/admin.css"]}

    class Meta:
        model = Channel
        fields = (
            "kind",
            "code",
            "name",
            "platform",
            "is_active",
            "queue",
            "greeting",
            "away_message",
            "has_prechat_form",
            "has_survey",
            "config",
        )

    def clean_config(self):
        value = self.cleaned_data.get("config")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError(_('An object: {"key": "value", ...}.'))
        return value


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ("name", "kind", "code", "platform", "queue", "is_active")
    list_filter = ("kind", "is_active")
    list_editable = ("is_active",)
    search_fields = ("name", "code", "platform")
    list_select_related = ("queue",)
    ordering = ("kind", "code")


class HandsOutWaitingChats:
    """A change here can make room for waiting chats (an agent online, more chats at once, a new
    member of a queue, a queue that overflows now): they are handed out in the same
    transaction, under the routing lock taken before the row is written."""

    def save_model(self, request, obj, form, change):
        services.routing_lock()
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.conversations_hand_out(now=timezone.now())


@admin.register(InboxQueue)
class InboxQueueAdmin(HandsOutWaitingChats, admin.ModelAdmin):
    list_display = ("name", "skill", "strategy", "overflow_after")
    list_filter = ("strategy",)
    search_fields = ("name", "skill")
    filter_horizontal = ("members", "supervisors")
    exclude = ("last_assigned",)


@admin.register(AgentStatus)
class AgentStatusAdmin(HandsOutWaitingChats, admin.ModelAdmin):
    list_display = ("user", "status", "capacity", "changed_at")
    list_filter = ("status",)
    search_fields = ("user__username", "user__display_name")
    raw_id_fields = ("user",)
    list_select_related = ("user",)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Read-mostly: support can correct the record, not rewrite what happened."""

    list_display = (
        "id",
        "channel",
        "customer",
        "status",
        "assignee",
        "last_message_at",
        "outcome",
        "rating",
    )
    list_filter = ("status", "channel", "outcome", "is_offline")
    date_hierarchy = "created_at"
    search_fields = ("=id", "customer__name", "customer__number", "subject", "topic")
    list_select_related = ("channel", "customer", "assignee")
    raw_id_fields = (
        "channel",
        "customer",
        "identity",
        "queue",
        "assignee",
        "closed_by",
        "ticket",
        "rated_agent",
    )
    readonly_fields = (
        "channel",
        "customer",
        "identity",
        "thread_key",
        "visitor_token",
        "is_offline",
        "last_message_at",
        "last_message_preview",
        "waiting_since",
        "wait_alert_level",
        "greeted_at",
        "away_replied_at",
        "first_response_at",
        "assigned_at",
        "closed_at",
        "closed_by",
        "rating",
        "rating_comment",
        "rated_at",
        "rated_agent",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request):
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "conversation",
        "direction",
        "kind",
        "status",
        "is_automatic",
        "created_at",
    )
    list_filter = ("direction", "kind", "status", "is_automatic")
    search_fields = ("=id", "=conversation__id", "external_id")
    raw_id_fields = ("conversation", "channel", "author")
    readonly_fields = ("created_at", "sent_at")

    def has_add_permission(self, request):
        return False


@admin.register(CallRecord)
class CallRecordAdmin(admin.ModelAdmin):
    list_display = ("started_at", "direction", "customer", "agent", "result", "callback")
    list_filter = ("result", "direction")
    date_hierarchy = "started_at"
    search_fields = ("customer__name", "customer__number", "external_id")
    list_select_related = ("customer", "agent", "callback")
    raw_id_fields = ("customer", "agent", "callback", "recorded_by")


@admin.register(QuickReply)
class QuickReplyAdmin(admin.ModelAdmin):
    list_display = ("shortcut", "title", "owner", "is_active")
    list_filter = ("is_active",)
    search_fields = ("shortcut", "title", "body")
    raw_id_fields = ("owner",)

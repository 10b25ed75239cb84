from django.contrib import admin

from kefu.campaigns.models import (
    Campaign,
    CampaignRecipient,
    MemberBenefit,
    MessageTemplate,
    OptOut,
    OutboxMessage,
    Segment,
)


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "gateway", "purpose", "is_active")
    list_filter = ("gateway", "purpose", "is_active")


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("name", "filters", "created_by")


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "template", "status", "scheduled_at", "finished_at")
    list_filter = ("kind", "status")
    raw_id_fields = ("created_by",)


@admin.register(CampaignRecipient)
class CampaignRecipientAdmin(admin.ModelAdmin):
    list_display = ("campaign", "customer", "address", "status", "sent_at")
    list_filter = ("status",)
    raw_id_fields = ("campaign", "customer")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "gateway", "to", "subject", "reference")
    list_filter = ("gateway",)
    raw_id_fields = ("customer", "recipient")


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    list_display = ("customer", "channel", "source", "created_at")
    raw_id_fields = ("customer", "recorded_by")


@admin.register(MemberBenefit)
class MemberBenefitAdmin(admin.ModelAdmin):
    list_display = ("customer", "kind", "occasion", "given_at", "given_by")
    raw_id_fields = ("customer", "given_by")

from django.contrib import admin

from kefu.customers.models import CustomFieldDefinition, Tag


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ("name",)


@admin.register(CustomFieldDefinition)
class CustomFieldDefinitionAdmin(admin.ModelAdmin):
    list_display = ("key", "label", "field_type", "is_required", "position")
    list_editable = ("position",)

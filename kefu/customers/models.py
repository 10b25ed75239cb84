from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from kefu.core.models import TimeStampedModel


class Tag(models.Model):
    """A label on customers (e.g. 慢病, 母婴); searchable and filterable."""

    name = models.CharField(_("name"), max_length=50, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self) -> str:
        return self.name


class CustomerQuerySet(models.QuerySet["Customer"]):
    def live(self) -> "CustomerQuerySet":
        """Customers not merged into another record."""
        return self.filter(merged_into__isnull=True)


class Customer(TimeStampedModel):
    """One person or company the department serves, across every channel."""

    class Status(models.TextChoices):
        PROSPECT = "prospect", _("Prospect")
        CUSTOMER = "customer", _("Customer")
        MEMBER = "member", _("Member")
        CLOSED = "closed", _("Closed")

    class Level(models.TextChoices):
        NORMAL = "normal", _("Normal")
        VIP = "vip", _("VIP")
        KEY_ACCOUNT = "key_account", _("Key account")

    class Gender(models.TextChoices):
        UNKNOWN = "", _("Unknown")
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")

    class Temperament(models.TextChoices):
        UNKNOWN = "", _("Not noted")
        IRATE = "irate", _("Irate")
        ASSERTIVE = "assertive", _("Assertive")
        COMPOSED = "composed", _("Composed")
        CONFUSED = "confused", _("Confused")

    class Source(models.TextChoices):
        PHONE = "phone", _("Phone")
        WEB_CHAT = "web_chat", _("Web chat")
        WECHAT = "wechat", _("WeChat")
        QQ = "qq", _("QQ")
        EMAIL = "email", _("Email")
        STORE = "store", _("Store")
        WALK_IN = "walk_in", _("Walk-in")
        PLATFORM = "platform", _("Online platform")
        IMPORT = "import", _("Import")
        OTHER = "other", _("Other")

    number = models.CharField(_("customer number"), max_length=20, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=100)
    status = models.CharField(
        _("lifecycle status"),
        max_length=20,
        choices=Status.choices,
        default=Status.PROSPECT,
        db_index=True,
    )
    level = models.CharField(
        _("level"), max_length=20, choices=Level.choices, default=Level.NORMAL, db_index=True
    )
    gender = models.CharField(
        _("gender"), max_length=10, choices=Gender.choices, blank=True, default=""
    )
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    source = models.CharField(
        _("source channel"), max_length=20, choices=Source.choices, default=Source.OTHER
    )
    store = models.ForeignKey(
        "accounts.Store",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="customers",
        verbose_name=_("store"),
    )
    temperament = models.CharField(
        _("temperament"), max_length=20, choices=Temperament.choices, blank=True, default=""
    )
    temperament_note = models.CharField(_("temperament note"), max_length=500, blank=True)
    membership_card_no = models.CharField(
        _("membership card number"), max_length=40, unique=True, null=True, blank=True
    )
    member_since = models.DateField(_("member since"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    # Purchase rhythm and the churn rule (no purchase or contact for longer than the usual
    # interval): churn_due_on = max(last purchase, last contact) + interval, kept by
    # customer_touch so the records officer's list is one indexed comparison.
    last_purchase_on = models.DateField(_("last purchase"), null=True, blank=True)
    purchase_interval_days = models.PositiveIntegerField(
        _("usual days between purchases"), null=True, blank=True
    )
    last_contact_on = models.DateField(_("last contact"), null=True, blank=True)
    churn_due_on = models.DateField(null=True, blank=True, db_index=True, editable=False)
    custom_fields = models.JSONField(_("custom fields"), default=dict, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="customers", verbose_name=_("tags"))
    merged_into = models.ForeignKey(
        "self",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_from",
        verbose_name=_("merged into"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Lower-case tokens: number, name (as written and simplified), every pinyin reading and its
    # initials, phone numbers and their last four digits, e-mail, card number, tags.
    search_text = models.TextField(editable=False, default="")

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        permissions = [
            ("view_all_customers", _("Can see customers of every store")),
            ("view_full_contact", _("Can reveal full phone numbers and e-mails")),
            ("import_customer", _("Can import customers from spreadsheets")),
            ("export_customer", _("Can export customers")),
            ("merge_customer", _("Can merge duplicate customers")),
            ("view_customer_audit", _("Can see the change log of customers")),
        ]
        indexes = [models.Index(fields=["store", "-id"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.number})"

    def get_absolute_url(self) -> str:
        return reverse("customers:customer_detail", kwargs={"pk": self.pk})

    def is_merged(self) -> bool:
        return self.merged_into_id is not None


class ContactPoint(models.Model):
    """A way to reach a customer. A normalized value belongs to one customer only."""

    class Kind(models.TextChoices):
        PHONE = "phone", _("Phone")
        EMAIL = "email", _("E-mail")
        WECHAT_OPENID = "wechat_openid", _("WeChat openid")
        WECHAT_UNIONID = "wechat_unionid", _("WeChat unionid")
        QQ = "qq", _("QQ")

    customer = models.ForeignKey(Customer, models.CASCADE, related_name="contacts")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    value = models.CharField(_("value"), max_length=200)
    label = models.CharField(_("label"), max_length=50, blank=True)
    is_primary = models.BooleanField(_("primary"), default=False)
    # Last four digits of a phone number, for "尾号" search.
    last4 = models.CharField(max_length=4, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_primary", "id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="contact_kind_value_unique")
        ]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.masked}"

    @property
    def masked(self) -> str:
        from kefu.customers.contacts import contact_mask

        return contact_mask(self.kind, self.value)

    @property
    def display(self) -> str:
        from kefu.customers.contacts import contact_display

        return contact_display(self.kind, self.value)


class Address(models.Model):
    customer = models.ForeignKey(Customer, models.CASCADE, related_name="addresses")
    label = models.CharField(_("label"), max_length=50, blank=True)
    province = models.CharField(_("province"), max_length=50, blank=True)
    city = models.CharField(_("city"), max_length=50, blank=True)
    district = models.CharField(_("district"), max_length=50, blank=True)
    detail = models.CharField(_("street address"), max_length=200)
    postcode = models.CharField(_("postcode"), max_length=10, blank=True)
    is_default = models.BooleanField(_("default"), default=False)

    class Meta:
        ordering = ["-is_default", "id"]
        verbose_name = _("address")
        verbose_name_plural = _("addresses")

    def __str__(self) -> str:
        return "".join([self.province, self.city, self.district, self.detail])


class CustomFieldDefinition(models.Model):
    """A field an install adds to every customer (e.g. 慢病类型 for a pharmacy, 房号 for a property)."""

    class FieldType(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        DATE = "date", _("Date")
        CHOICE = "choice", _("Choice")

    key = models.SlugField(_("key"), max_length=50, unique=True)
    label = models.CharField(_("label"), max_length=100)
    field_type = models.CharField(
        _("type"), max_length=10, choices=FieldType.choices, default=FieldType.TEXT
    )
    choices = models.JSONField(_("choices"), default=list, blank=True)
    is_required = models.BooleanField(_("required"), default=False)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "key"]
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")

    def __str__(self) -> str:
        return self.label


class CustomerEvent(models.Model):
    """One entry of a customer's timeline, written in the same transaction as the change."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        UPDATED = "updated", _("Updated")
        LIFECYCLE_CHANGED = "lifecycle_changed", _("Lifecycle changed")
        CONTACT_ADDED = "contact_added", _("Contact added")
        CONTACT_REMOVED = "contact_removed", _("Contact removed")
        MERGED = "merged", _("Merged")
        IMPORTED = "imported", _("Imported")
        TICKET_OPENED = "ticket_opened", _("Ticket opened")
        TICKET_RESOLVED = "ticket_resolved", _("Ticket resolved")
        TICKET_CLOSED = "ticket_closed", _("Ticket closed")
        TICKET_REOPENED = "ticket_reopened", _("Ticket reopened")
        CONVERSATION_STARTED = "conversation_started", _("Conversation started")
        CONVERSATION_CLOSED = "conversation_closed", _("Conversation closed")
        CALL_RECORDED = "call_recorded", _("Call")
        APPOINTMENT_BOOKED = "appointment_booked", _("Store appointment booked")
        APPOINTMENT_VISITED = "appointment_visited", _("Store visit")
        APPOINTMENT_MISSED = "appointment_missed", _("Missed store appointment")
        FOLLOWUP_DONE = "followup_done", _("Follow-up")
        MESSAGE_SENT = "message_sent", _("Message sent")

    customer = models.ForeignKey(Customer, models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.kind}"

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def seconds_words(seconds: int | None) -> str:
    """12 → "12 s", 130 → "2 min 10 s", 4000 → "1 h 6 min"."""
    if seconds is None:
        return ""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return _("%(s)d s") % {"s": seconds}
    if seconds < 3600:
        return _("%(m)d min %(s)d s") % {"m": seconds // 60, "s": seconds % 60}
    return _("%(h)d h %(m)d min") % {"h": seconds // 3600, "m": seconds % 3600 // 60}


@register.filter
def file_size(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024:
        return _("%(n)d bytes") % {"n": size}
    if size < 1024 * 1024:
        return _("%(n).1f KB") % {"n": size / 1024}
    return _("%(n).1f MB") % {"n": size / 1024 / 1024}

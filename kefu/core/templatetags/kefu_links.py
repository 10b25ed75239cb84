"""{% load kefu_links %} … href="{{ url|http_url }}": only http(s) addresses reach an href or a
src (kefu.core.links); anything else renders as an empty string."""

from django import template

from kefu.core.links import http_url_or_empty

register = template.Library()


@register.filter
def http_url(value: object) -> str:
    return http_url_or_empty(value)

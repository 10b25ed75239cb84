"""The app shell's navigation: each app registers its own entries (in its AppConfig.ready()), so
core names no module above it. The `navigation` context processor shows a user the entries
they may open, in `order`; the home page sends them to the first start page they may open.

Orders in use (leave gaps): home 100, inbox 200, customers 300 (import 310), tickets 400
(department queue 410, complaint summaries 420), calls 500, appointments 600, bulk messages
700, follow-ups 800, notifications 900, background jobs 1000, API tokens 1100, administration
1200, API docs 1300.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse


@dataclass(frozen=True)
class NavEntry:
    """One module of the app shell.

    `key` is what a page sets `active_nav` to; `url` a URL name (reversed per request) or a path
    starting with "/". The entry shows to users who hold every one of `permissions` and for whom
    `visible(user)`, when given, is true. `badge(user)` is a count shown beside the label (and
    given to templates as `badge_as`). An entry with a `start` is a start page: the home page
    redirects to the visible one with the lowest `start`.
    """

    key: str
    label: Any  # a lazy translation
    url: str
    order: int
    permissions: tuple[str, ...] = ()
    visible: Callable[[Any], bool] | None = None
    badge: Callable[[Any], int] | None = None
    badge_as: str = ""
    start: int | None = None

    def href(self) -> str:
        return self.url if self.url.startswith("/") else reverse(self.url)

    def is_visible_to(self, user) -> bool:
        if self.permissions and not user.has_perms(self.permissions):
            return False
        return self.visible is None or self.visible(user)


_entries: dict[str, NavEntry] = {}


def nav_register(*entries: NavEntry) -> None:
    """Add entries to the navigation. Registering a key again with the same URL replaces the
    entry (ready() may run twice); two modules claiming one key is a configuration error."""
    for entry in entries:
        known = _entries.get(entry.key)
        if known is not None and known.url != entry.url:
            raise ImproperlyConfigured(
                f"Navigation key {entry.key!r} is taken by {known.url!r}; {entry.url!r} needs "
                "another key."
            )
        _entries[entry.key] = entry


def nav_entries() -> list[NavEntry]:
    """Every registered entry, in the order the app shell shows them."""
    return sorted(_entries.values(), key=lambda entry: (entry.order, entry.key))


def nav_entries_for(user) -> Iterator[NavEntry]:
    """The entries this user may open, in order."""
    return (entry for entry in nav_entries() if entry.is_visible_to(user))


def nav_start_url(user) -> str | None:
    """Where the home page sends this user: their first start page, or None to stay home."""
    starts = [(e.start, e) for e in nav_entries() if e.start is not None and e.is_visible_to(user)]
    if not starts:
        return None
    return min(starts, key=lambda start: start[0])[1].href()

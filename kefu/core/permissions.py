"""Permission checks shared by services, selectors, pages and the API."""

from kefu.core.exceptions import Forbidden


def require_perm(user, perm: str) -> None:
    """Refuse unless the user holds `perm`; `None` is the system itself and may do anything."""
    if user is None:
        return
    if not (user.is_active and user.has_perm(perm)):
        raise Forbidden()


def has_perm(user, perm: str) -> bool:
    return user is None or (user.is_active and user.has_perm(perm))

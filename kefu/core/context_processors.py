from kefu.core.navigation import nav_entries_for


def csp_nonce(request):
    """{{ csp_nonce }}: the nonce inline <script> and <style> blocks carry (kefu.core.csp)."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}


def navigation(request):
    """The app shell's modules (kefu.core.navigation): those the user may open, in order, each
    with its count when it has one (also given to templates by its `badge_as` name)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    context: dict = {}
    items = []
    for entry in nav_entries_for(user):
        badge = entry.badge(user) if entry.badge is not None else None
        if entry.badge_as:
            context[entry.badge_as] = badge
        items.append({"label": entry.label, "url": entry.href(), "key": entry.key, "badge": badge})
    context["nav_items"] = items
    return context


def public_address_warning(request):
    """Tell administrators on every page when links would point at an address that this very
    request shows is not where people reach Kefu (KEFU_BASE_URL unset behind a proxy)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return {}
    from kefu.core.public_address import public_address_problem

    return {"public_address_problem": public_address_problem(request)}

from django.utils import timezone


def calendar_warnings(request):
    """Tell administrators when this or next year has no public holidays entered."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return {}
    from kefu.businesstime.selectors import calendar_years_missing

    return {"calendar_years_missing": calendar_years_missing(today=timezone.localdate())}

from django.utils import timezone


def calendar_warnings(request):
    """Tell administrators (who enter the calendar) when this or next year has no public
    holidays entered."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    if not user.has_perm("businesstime.change_calendarday"):
        return {}
    from kefu.businesstime.selectors import calendar_years_missing

    return {"calendar_years_missing": calendar_years_missing(today=timezone.localdate())}

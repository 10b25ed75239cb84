from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _may_see_jobs(user) -> bool:
    from kefu.jobs.kinds import job_kinds

    return user.has_perm("jobs.view_all_jobs") or any(
        user.has_perm(kind.permission) for kind in job_kinds()
    )


class JobsConfig(AppConfig):
    name = "kefu.jobs"
    label = "jobs"
    verbose_name = _("Background jobs")

    def ready(self) -> None:
        from kefu.core.api import api_router_add
        from kefu.core.navigation import NavEntry, nav_register
        from kefu.jobs.api import router

        api_router_add("/jobs", router)
        nav_register(
            NavEntry(
                "jobs", _("Background jobs"), "jobs:job_list", order=1000, visible=_may_see_jobs
            )
        )

from kefu.core.exceptions import Forbidden, NotFound


class DomainErrorMiddleware:
    """Pages: a NotFound or Forbidden raised by a selector or service renders the 404/403 page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from kefu.core.views import page_not_found, permission_denied

        if request.path.startswith("/api/"):
            return None
        if isinstance(exception, NotFound):
            return page_not_found(request, exception)
        if isinstance(exception, Forbidden):
            return permission_denied(request, exception)
        return None

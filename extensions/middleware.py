"""Django middleware that tells websocket handshakes from page requests."""
from django.contrib.auth import middleware
from django.core.exceptions import PermissionDenied

__all__ = ['LoginRequiredMiddleware']


class LoginRequiredMiddleware(middleware.LoginRequiredMiddleware):
    """Django's ``LoginRequiredMiddleware``, but a websocket handshake from an anonymous
    user gets 403 Forbidden instead of the redirect to the login page, which a websocket
    client cannot follow (``extensions.decorators.login_required`` says more). Views
    marked ``@login_not_required`` stay open, plain requests are redirected as Django's
    middleware redirects them."""

    def handle_no_permission(self, request, view_func):
        if 'wsgi.websocket' in request.environ:
            raise PermissionDenied('Log in before opening this websocket.')
        return super().handle_no_permission(request, view_func)

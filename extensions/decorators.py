"""Decorators for Django views that serve websockets."""
import functools

from asgiref.sync import iscoroutinefunction
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import decorators as auth_decorators
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse

from .handshake import choose_subprotocol

__all__ = ['login_required', 'require_websocket']

_DEFAULT = object()

_LOG_IN_FIRST = 'Log in before opening this websocket.'


def require_websocket(view=None, *, max_message_size=_DEFAULT, subprotocols=None):
    """Serve websocket requests only, optionally with this view's own message limit and
    the subprotocols it speaks.

    A plain request gets 426 Upgrade Required. The view may return nothing: once the
    websocket is accepted its response is never sent. Use bare or with arguments::

        @require_websocket
        def echo(request): ...

        @require_websocket(max_message_size=16 * 2**20)
        def upload(request): ...

        @require_websocket(subprotocols=['chat.v2', 'chat.v1'])
        def chat(request): ...   # websocket.subprotocol: the one agreed, or None

    With ``subprotocols``, ``websocket.subprotocol`` is the first of the client's offers,
    in the client's order of preference, that the view supports, and ``accept()`` (or
    the first use of the socket) agrees to it; the view may still answer in plain HTTP.
    A client that offers none of them gets 400 Bad Request, naming both lists, before
    the view runs; a client that offers no subprotocol at all is accepted without one.
    """
    if subprotocols is not None and (isinstance(subprotocols, str) or not subprotocols):
        raise ValueError('subprotocols must be a non-empty list of names, not %r'
                         % (subprotocols,))

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            websocket = request.environ.get('wsgi.websocket')
            if websocket is None:
                response = HttpResponse('This URL serves websockets only.\n', status=426,
                                        content_type='text/plain; charset=utf-8')
                if 'wsgi.server' in request.environ:
                    # RFC 9110 wants Upgrade on a 426. It is hop-by-hop, which wsgiref
                    # (runserver) refuses; superserver's middleware sets wsgi.server.
                    response['Upgrade'] = 'websocket'
                return response
            if max_message_size is not _DEFAULT:
                websocket.max_message_size = max_message_size
            if subprotocols is not None:
                offered = websocket.subprotocols
                websocket.subprotocol = choose_subprotocol(offered, subprotocols)
                if offered and websocket.subprotocol is None:
                    return HttpResponse(
                        'None of the subprotocols offered (%s) is spoken here (%s).\n'
                        % (', '.join(offered), ', '.join(subprotocols)),
                        status=400, content_type='text/plain; charset=utf-8')
            response = view(request, *args, **kwargs)
            return HttpResponse() if response is None else response
        return wrapper

    return decorator if view is None else decorator(view)


def login_required(function=None, redirect_field_name=REDIRECT_FIELD_NAME, login_url=None):
    """Django's ``login_required``, but a websocket handshake from an anonymous user gets
    403 Forbidden instead of the redirect to the login page.

    A websocket client cannot follow a redirect: a browser's ``WebSocket`` only sees the
    connection fail, other clients an unexpected 302 to a page that a project without
    ``LOGIN_URL`` does not even have. The 403 comes from ``PermissionDenied``, so the
    project's 403 handler answers it and the log says Forbidden. Plain requests are
    redirected as Django's decorator redirects them, with the same arguments::

        @login_required
        @require_websocket
        def room(request, name): ...
    """
    def decorator(view):
        redirecting = auth_decorators.login_required(
            view, redirect_field_name=redirect_field_name, login_url=login_url)

        if iscoroutinefunction(view):   # an async view: the user is awaited, as Django's
            @functools.wraps(redirecting)
            async def wrapper(request, *args, **kwargs):
                if 'wsgi.websocket' in request.environ and not (
                        await request.auser()).is_authenticated:
                    raise PermissionDenied(_LOG_IN_FIRST)
                return await redirecting(request, *args, **kwargs)
            return wrapper

        @functools.wraps(redirecting)
        def wrapper(request, *args, **kwargs):
            if 'wsgi.websocket' in request.environ and not request.user.is_authenticated:
                raise PermissionDenied(_LOG_IN_FIRST)
            return redirecting(request, *args, **kwargs)
        return wrapper

    return decorator if function is None else decorator(function)

"""Decorators for Django views that serve websockets."""
import functools

from django.http import HttpResponse

__all__ = ['require_websocket']

_DEFAULT = object()


def require_websocket(view=None, *, max_message_size=_DEFAULT):
    """Serve websocket requests only, optionally with this view's own message limit.

    A plain request gets 426 Upgrade Required. The view may return nothing: once the
    websocket is accepted its response is never sent. Use bare or with arguments::

        @require_websocket
        def echo(request): ...

        @require_websocket(max_message_size=16 * 2**20)
        def upload(request): ...
    """
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
            response = view(request, *args, **kwargs)
            return HttpResponse() if response is None else response
        return wrapper

    return decorator if view is None else decorator(view)

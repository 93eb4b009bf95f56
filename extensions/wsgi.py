"""The Django project as superserver serves it, and a server for it.

``get_wsgi_application()`` is Django's, plus one duty a websocket view needs: its
database connections are closed when it ends. A view may run for hours in its own
greenlet; without this, thousands of sockets would hold thousands of connections
(``CONN_MAX_AGE`` keeps them open by design, and an exception skips Django's own cleanup).
"""
import django
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections
from werkzeug.wsgi import ClosingIterator

from .adaptation import WebSocketServer
from .conf import origin_allowed, websocket_config

__all__ = ['get_wsgi_application', 'make_server', 'CloseDatabaseConnections']


class CloseDatabaseConnections:
    """WSGI middleware: close the connections of a websocket request when it ends."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        if 'wsgi.websocket' not in environ:
            return self.application(environ, start_response)
        try:
            result = self.application(environ, start_response)
        except BaseException:
            connections.close_all()
            raise
        # Same greenlet, so the same (greenlet-local) connections as the view's.
        return ClosingIterator(result, connections.close_all)


def get_wsgi_application():
    """The project's WSGI application, ready for ``WebSocketServer``."""
    django.setup(set_prefix=False)
    return CloseDatabaseConnections(WSGIHandler())


def make_server(listener, application=None, **kwargs):
    """A ``WebSocketServer`` for the project, limits and origins from its settings."""
    if application is None:
        application = get_wsgi_application()
    kwargs.setdefault('websocket_config', websocket_config())
    kwargs.setdefault('origin_policy', origin_allowed)
    return WebSocketServer(listener, application, **kwargs)

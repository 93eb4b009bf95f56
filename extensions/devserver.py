"""The development server behind ``./manage.py superserver``, usable without it.

The application is built from small WSGI pieces, outermost first::

    WebSocketMiddleware          (added by the server: upgrades, wsgi.websocket)
      PlainRequestDebugger       (DEBUG only; Werkzeug's debugger, skipped for websockets)
        CloseDatabaseConnections
          Django

The upgrade decision comes before the debugger, since no HTML error page can follow a
101; an exception in a websocket view is logged and closes the socket with 1011.
"""
import sys

import django
from django.conf import settings
from django.utils import autoreload
from werkzeug.debug import DebuggedApplication

from .wsgi import get_wsgi_application, make_server

__all__ = ['PlainRequestDebugger', 'get_application', 'run']


class PlainRequestDebugger:
    """Werkzeug's interactive debugger for plain requests only."""

    def __init__(self, application, evalex=True):
        self.application = application
        self.debugger = DebuggedApplication(application, evalex=evalex, pin_logging=False)

    def __call__(self, environ, start_response):
        if 'wsgi.websocket' in environ:
            return self.application(environ, start_response)
        return self.debugger(environ, start_response)


def get_application(use_debugger=True, use_evalex=True):
    """The project's application, with the debugger when DEBUG allows it."""
    application = get_wsgi_application()
    if use_debugger and settings.DEBUG:
        # Let exceptions reach the debugger instead of Django's technical 500 page.
        settings.DEBUG_PROPAGATE_EXCEPTIONS = True
        application = PlainRequestDebugger(application, evalex=use_evalex)
    return application


def serve(addr, port, *, use_debugger=True, use_evalex=True, stdout=sys.stdout):
    """Build the application and the server, print the banner and serve forever."""
    application = get_application(use_debugger, use_evalex)
    server = make_server((addr, port), application)
    server.start()
    host = '[%s]' % addr if ':' in addr else addr
    stdout.write('superserver on Django %s, settings %r\n'
                 'Starting development server at http://%s:%d/\n'
                 % (django.get_version(), settings.SETTINGS_MODULE, host, server.server_port))
    if isinstance(application, PlainRequestDebugger):
        stdout.write('Debugger PIN: %s\n' % application.debugger.pin)
    stdout.write('Quit the server with CONTROL-C.\n')
    stdout.flush()
    server.serve_forever()


def run(addr, port, *, use_reloader=True, **options):
    """Serve, restarting the process when a Python module changes (Django's reloader)."""
    if use_reloader:
        autoreload.run_with_reloader(serve, addr, port, **options)
    else:
        serve(addr, port, **options)

"""The development server behind ``./manage.py superserver``, usable without it.

The application is built from small WSGI pieces, outermost first::

    WebSocketMiddleware          (added by the server: upgrades, wsgi.websocket)
      PlainRequestDebugger       (DEBUG only; Werkzeug's debugger, skipped for websockets)
        StaticFilesHandler       (as runserver serves static files)
          CloseDatabaseConnections
            Django

The upgrade decision comes before the debugger, since no HTML error page can follow a
101: an exception in a websocket view is logged with its locals and closes with 1011.
Around the server: one access-log line per request and per websocket (Django's
``django.server`` logger, coloured like runserver's), HTTPS/WSS, the blocking detector,
and Django's reloader (``extensions.reloading``), before whose restart every websocket is
closed with 1012; Ctrl-C and SIGTERM close them with 1001, with or without the reloader.
"""
import logging
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import django
from django.apps import apps
from django.conf import settings
from django.utils import autoreload
from werkzeug.debug import DebuggedApplication

from .blocking import BlockingDetector
from .devlog import LocalsFormatter, user_traceback
from .reloading import run_with_reloader
from .wsgi import get_wsgi_application, make_server

__all__ = ['PlainRequestDebugger', 'get_application', 'certificate_files', 'serve', 'run']


class PlainRequestDebugger:
    """Werkzeug's interactive debugger for plain requests only.

    The exception reaches the debugger, which prints it and shows it, without the frames
    that only carried the request to the view (``devlog.user_traceback``).
    """

    def __init__(self, application, evalex=True):
        self.application = application
        self.debugger = DebuggedApplication(self._user_traceback, evalex=evalex,
                                            pin_logging=False)

    def __call__(self, environ, start_response):
        if 'wsgi.websocket' in environ:
            return self.application(environ, start_response)
        return self.debugger(environ, start_response)

    def _user_traceback(self, environ, start_response):
        __traceback_hide__ = True   # noqa: F841 - Werkzeug's debugger hides this frame
        try:
            return self.application(environ, start_response)
        except Exception as error:
            raise error.with_traceback(user_traceback(error.__traceback__))


def get_application(use_debugger=True, use_evalex=True, use_static=True, insecure=False):
    """The project's application, with static files and the debugger as runserver_plus."""
    application = get_wsgi_application()
    if use_static and apps.is_installed('django.contrib.staticfiles') and (
            settings.DEBUG or insecure):
        from django.contrib.staticfiles.handlers import StaticFilesHandler
        application = StaticFilesHandler(application)
    if use_debugger and settings.DEBUG:
        # Let exceptions reach the debugger instead of Django's technical 500 page.
        settings.DEBUG_PROPAGATE_EXCEPTIONS = True
        application = PlainRequestDebugger(application, evalex=use_evalex)
    return application


def certificate_files(cert_file=None, key_file=None, host='localhost'):
    """(cert, key) paths for HTTPS, as runserver_plus finds them.

    A missing key is looked for beside the certificate (``.key``) and a missing
    certificate beside the key (``.crt``). A certificate path that does not exist yet
    gets an ad-hoc self-signed certificate and key, written there by Werkzeug.
    """
    if cert_file is None and key_file is None:
        return None
    cert = Path(cert_file) if cert_file else Path(key_file).with_suffix('.crt')
    key = Path(key_file) if key_file else cert.with_suffix('.key')
    if not cert.exists():
        from werkzeug.serving import make_ssl_devcert
        cert, key = map(Path, make_ssl_devcert(str(cert.with_suffix('')), host=host))
        logging.getLogger('superserver.server').warning(
            'Generated an ad-hoc self-signed certificate for %s: %s and %s', host, cert, key)
    return str(cert), str(key)


def _version(distribution):
    try:
        return version(distribution)
    except PackageNotFoundError:   # run from a source tree that was never installed
        return 'from source'


def _log_tracebacks_with_locals():
    """Give superserver's own loggers a handler showing locals, unless the project has."""
    superserver = logging.getLogger('superserver')
    if not superserver.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(LocalsFormatter('%(levelname)s %(name)s: %(message)s'))
        superserver.addHandler(handler)
        superserver.setLevel(logging.INFO)


def _restarting(server):
    """A file_changed receiver: before the reloader restarts the process, close every
    websocket with 1012 (service restart) so that browsers know to reconnect."""
    def receiver(**kwargs):
        server.close_websockets(1012, 'restarting after a code change', timeout=2)
        # Return nothing: a true value would tell the reloader not to reload.
    return receiver


def serve(addr, port, *, use_debugger=True, use_evalex=True, use_static=True, insecure=False,
          cert_file=None, key_file=None, block_threshold=0.1, before_serving=None,
          stdout=sys.stdout):
    """Build the application and the server, print the banner and serve until stopped."""
    if before_serving is not None:
        before_serving()
    _log_tracebacks_with_locals()
    application = get_application(use_debugger, use_evalex, use_static, insecure)
    tls = certificate_files(cert_file, key_file, host=addr if addr not in ('0.0.0.0', '::')
                            else 'localhost')
    server = make_server((addr, port), application, log=None,
                         access_log=logging.getLogger('django.server'),
                         **(dict(zip(('certfile', 'keyfile'), tls)) if tls else {}))
    server.start()
    if block_threshold:
        BlockingDetector(block_threshold).start()
    autoreload.file_changed.connect(_restarting(server), weak=False)
    host = '[%s]' % addr if ':' in addr else addr
    stdout.write(
        'superserver %s (gevent %s, ws4py %s), Django %s, using settings %r\n'
        'Starting development server at %s://%s:%d/\n'
        % (_version('superserver'), _version('gevent'), _version('ws4py'), django.get_version(),
           settings.SETTINGS_MODULE, 'https' if tls else 'http', host, server.server_port))
    if isinstance(application, PlainRequestDebugger):
        stdout.write('Debugger PIN: %s\n' % application.debugger.pin)
    if block_threshold:
        stdout.write('Reporting code that blocks the event loop for more than %d ms.\n'
                     % (block_threshold * 1000))
    stdout.write('Quit the server with CONTROL-C.\n')
    stdout.flush()
    server.serve_forever()


def run(addr, port, *, use_reloader=True, **options):
    """Serve, restarting the process when a Python module changes (Django's reloader)."""
    if use_reloader:
        sys.exit(run_with_reloader(serve, addr, port, **options))
    serve(addr, port, **options)

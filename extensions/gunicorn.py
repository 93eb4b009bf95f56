"""gunicorn's gevent worker, serving with superserver: every core, websockets included.

    gunicorn -k extensions.gunicorn.WebSocketWorker -w 4 myproject.wsgi

Each worker process patches the standard library (``gevent_specific``) before it loads
the application, then serves it with ``WebSocketServer``, its handler and middleware. A
Django project's unmodified wsgi.py is served with the limits, origin policy and trusted
proxies of its settings, as ``./manage.py superserver`` serves it; any other WSGI
application with the defaults. gunicorn's --certfile/--keyfile give wss, and its access
log gets one line per request and one per websocket (when it ends, status 101).

Connections at once per worker: ``SUPERSERVER_MAX_CONNECTIONS`` when the project sets it,
else gunicorn's --worker-connections.

Several workers with the default ``SUPERSERVER_BROKER`` (``memory://``, each process its
own broker) serve echo websockets well, but ``publish()`` reaches the clients of one
worker only: the first worker (age 1) says so once in the error log, naming the setting.

Stopping loses no one:

- SIGTERM to the master (shutdown): the worker stops accepting, websockets get 1001
  (going away), in-flight requests and SSE streams get --graceful-timeout to finish.
- HUP (new workers replace the old), a worker retired by --max-requests or by TTOU: the
  same, but websockets get 1012 (service restart), so clients reconnect at once, to the
  workers that go on. A worker tells the two apart by whether the master still listens.
- SIGINT/SIGQUIT (gunicorn's quick shutdown): 1001, and one second for everything.

A TERM sent to every process at once (systemd's default KillMode) reaches a worker
while the master still listens: the worker gives the master half a second to close
its listeners before it takes the stop for a restart.

Not with --preload: the master would import the application before the workers patch
the standard library, and greenlets would share thread-locals (database connections
among them). The worker refuses it.
"""
import os
import stat
import sys
import time
import warnings

import gevent
from gevent.event import Event
from gunicorn.http.wsgi import base_environ
from gunicorn.sock import ssl_context
from gunicorn.workers.ggevent import VERSION, GeventPyWSGIWorker, PyWSGIHandler

from .adaptation import WebSocketHandler, WebSocketServer, raise_open_file_limit

__all__ = ['WebSocketWorker']

QUICK_SHUTDOWN_TIMEOUT = 1.0
#: Seconds a stopping worker gives the master to close its listeners: if it does, the
#: stop is a shutdown (1001), else a restart (1012).
MASTER_SETTLE_TIME = 0.5


class GunicornHandler(WebSocketHandler, PyWSGIHandler):
    """superserver's handler, logging to gunicorn's access log and environ."""


class WebSocketWorker(GeventPyWSGIWorker):
    """gunicorn's gevent worker with ``WebSocketServer`` and a graceful stop."""

    wsgi_handler = GunicornHandler

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)   # runs in the master: nothing process-wide
        self.servers = []
        self.retired = False       # by max_requests: a restart, whatever the master does
        self.quick = False         # SIGINT/SIGQUIT: one second to stop
        self._wakeup = None

    @classmethod
    def check_config(cls, cfg, log):
        if cfg.preload_app:
            raise RuntimeError(
                'extensions.gunicorn.WebSocketWorker cannot serve a preloaded application '
                '(--preload): the master imported it before gevent patched the standard '
                'library, so greenlets would share thread-locals, database connections '
                'among them. Leave --preload out: each worker loads the application once '
                'it is patched.')

    def patch(self):
        with warnings.catch_warnings():
            # gunicorn's master imported ssl but made no SSL object before this fork:
            # patching now is safe, and a warning in every worker would only alarm.
            warnings.filterwarnings('ignore', 'gevent_specific was imported too late')
            import gevent_specific
            gevent_specific.patch()
        super().patch()   # gevent sockets for the listeners

    def make_server(self, listener):
        """A ``WebSocketServer`` for one listening socket."""
        environ = base_environ(self.cfg)
        environ.update({'wsgi.multithread': True, 'SERVER_SOFTWARE': VERSION})
        options = {'log': self.log, 'handler_class': self.wsgi_handler, 'environ': environ}
        if self.cfg.is_ssl:
            options['ssl_context'] = ssl_context(self.cfg)
        django_settings = _django_settings()
        if django_settings is None:
            return WebSocketServer(listener, self.wsgi, spawn=self.worker_connections,
                                   **options)
        from .wsgi import make_server, serving
        options['spawn'] = getattr(django_settings, 'SUPERSERVER_MAX_CONNECTIONS', None) \
            or self.worker_connections
        return make_server(listener, serving(self.wsgi), **options)

    def run(self):
        self._wakeup = Event()
        raise_open_file_limit()   # one descriptor per connection
        self.servers = [self.make_server(listener) for listener in self.sockets]
        self.warn_of_a_broker_per_worker()
        for server in self.servers:
            server.start()
        while self.alive:
            self.notify()
            if sum(server.requests_served for server in self.servers) >= self.max_requests:
                self.log.info('Autorestarting worker after %d requests', self.max_requests)
                self.retired = True
                self.alive = False
                break
            self._wakeup.wait(1.0)
        self.stop_serving()

    def warn_of_a_broker_per_worker(self):
        """Warn, from the first worker only (once per start), when several workers each
        have an in-process broker: a message published in one reaches its clients alone,
        silently, unless this says so."""
        if self.age != 1 or self.cfg.workers < 2 or _django_settings() is None:
            return
        from .pubsub import broker_url
        url = broker_url()
        if url.startswith('memory://'):
            self.log.warning(
                'SUPERSERVER_BROKER is %r with %d workers: each worker has a broker of its '
                'own, so publish() reaches only the clients of the worker that publishes '
                '(presence counts them alone too). Set SUPERSERVER_BROKER to a '
                "'redis://...' URL (pip install 'superserver[redis]') for fan-out across "
                'workers, or run one worker (-w 1).', url, self.cfg.workers)

    def stop_serving(self):
        """Close websockets (1012 if this is a restart, else 1001) and let requests end."""
        restart = self.retired or _master_keeps_listening(self.ppid, self.sockets)
        code = 1012 if restart else 1001
        timeout = QUICK_SHUTDOWN_TIMEOUT if self.quick else self.cfg.graceful_timeout
        self.log.info('Stopping worker (pid:%s): websockets get %d, %s s for the rest',
                      self.pid, code, timeout)
        heartbeat = gevent.spawn(self._keep_notifying)
        try:
            gevent.joinall([gevent.spawn(server.shutdown, code, None, timeout)
                            for server in self.servers])
        finally:
            heartbeat.kill()

    def _keep_notifying(self):
        # The master kills a worker that stays silent for --timeout, shutting down or not.
        while True:
            self.notify()
            gevent.sleep(1.0)

    def handle_exit(self, sig, frame):
        super().handle_exit(sig, frame)
        self._wake()

    def handle_quit(self, sig, frame):
        self.alive = False
        self.quick = True
        gevent.spawn(self.cfg.worker_int, self)
        self._wake()

    def _wake(self):
        if self._wakeup is not None:
            gevent.spawn(self._wakeup.set)   # not from inside a signal handler


def _django_settings():
    """The settings of the Django project being served, or None for another application."""
    conf = sys.modules.get('django.conf')
    if conf is None or not conf.settings.configured:
        return None
    return conf.settings


def _master_keeps_listening(master_pid, listeners):
    """Does the master go on listening (a restart), or close its listeners within
    ``MASTER_SETTLE_TIME`` (a shutdown)? It closes them before it sends SIGTERM for a
    shutdown, and keeps them when it replaces workers."""
    deadline = time.monotonic() + MASTER_SETTLE_TIME
    while _master_listens(master_pid, listeners):
        if time.monotonic() >= deadline:
            return True
        gevent.sleep(0.05)
    return False


def _master_listens(master_pid, listeners):
    """Does the master hold our listening sockets now?"""
    try:
        ours = {os.fstat(listener.fileno()).st_ino for listener in listeners}
        directory = '/proc/%d/fd' % master_pid
        for fd in os.listdir(directory):
            try:
                status = os.stat(os.path.join(directory, fd))
            except OSError:
                continue   # closed meanwhile
            if stat.S_ISSOCK(status.st_mode) and status.st_ino in ours:
                return True
    except OSError:
        pass   # no /proc, or not allowed to look: assume a shutdown
    return False

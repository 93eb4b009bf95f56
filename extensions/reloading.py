"""Django's autoreloader around a server that closes its websockets before it stops.

Django's reloader (``run_with_reloader``, runserver's) runs a parent process that starts
the serving process again and again (with ``RUN_MAIN=true``) while it exits with 3,
and runs the server, in that child, in a thread while the main thread watches files.
Two of its ways drop every websocket without a close frame (the client sees 1006):

- its parent turns SIGTERM into ``sys.exit``, which kills the child at once, and on
  Ctrl-C gives the child 0.25 s before killing it;
- in its child, nothing ends the file watching once the server stopped, so the child
  relies on ``KeyboardInterrupt`` reaching the main thread, past the server.

Here the parent waits for its child as a shell waits for its foreground job: Ctrl-C
reaches the child directly (a terminal signals the whole process group, and a SIGINT
sent to the parent alone is not passed on), SIGTERM is passed on to it. The server,
which takes SIGINT and SIGTERM in the child as without the reloader
(``WebSocketServer.serve_forever``: every websocket closed with 1001), stops the file
watching when it returns, and the child exits 0. Until the server takes them (during
the system checks, or when it failed to start and waits for a fix), the signals stop
the file watching themselves: Django's reloader would print a ``KeyboardInterrupt``.
"""
import logging
import os
import signal
import subprocess
from contextlib import contextmanager

from django.utils import autoreload

__all__ = ['run_with_reloader']

#: The exit code with which the child asks to be started again (a file changed).
RESTART = 3


def run_with_reloader(serve, *args, **kwargs):
    """``serve(*args, **kwargs)``, started again whenever a Python module changes; the
    exit code for the process."""
    if os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) == 'true':
        return _serve_while_watching(serve, args, kwargs)
    return _restart_while_asked()


def _restart_while_asked():
    """The parent: run the serving process until it exits with another code than 3."""
    environ = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: 'true'}
    arguments = autoreload.get_child_arguments()
    while True:
        child = subprocess.Popen(arguments, env=environ, close_fds=False)
        with _signals_for(child):
            code = child.wait()
        if code != RESTART:
            return code


@contextmanager
def _signals_for(child):
    """SIGTERM passed on to ``child``; SIGINT left to it (it got the same Ctrl-C)."""
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, lambda signum, frame: None),
                signal.SIGTERM: signal.signal(signal.SIGTERM,
                                              lambda signum, frame: child.send_signal(signum))}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _serve_while_watching(serve, args, kwargs):
    """The child: ``serve`` in a thread while this one watches files; ends with exit
    code 3 (Django's reloader exits so) when one changed, 0 once the server stopped or,
    when no server takes the signals (it failed to start), on SIGINT or SIGTERM."""
    reloader = autoreload.get_reloader()
    logging.getLogger('django.utils.autoreload').info(
        'Watching for file changes with %s', type(reloader).__name__)

    def serve_then_stop_watching(*args, **kwargs):
        serve(*args, **kwargs)
        reloader.stop()   # an exception leaves it watching: fixing the code restarts

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: reloader.stop())
    autoreload.start_django(reloader, serve_then_stop_watching, *args, **kwargs)
    return 0

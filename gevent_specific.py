"""Patch the standard library for gevent: once per process, as early as possible.

Import it before anything else, in manage.py, wsgi.py or a gunicorn config::

    import gevent_specific  # noqa: F401  (first line)

Importing it again, or reloading it, patches nothing more. Imported after ``ssl`` was
imported, it still patches but warns with ``PatchedTooLate``. Imported after a thread
was started, it refuses with ``StartedTooLate``: patching then breaks the import
system (its locks change hands) and leaves that thread blocking. Where psycopg2 and
psycogreen are installed, psycopg2 is made cooperative too. asgiref's ``async_to_sync``
(Django's async views and middleware, the async ORM) runs coroutines in one asyncio
loop in a native thread (``extensions.asyncloop``): asyncio's running loop belongs to an
OS thread, which greenlets share.

A program that does not import it first can be run patched all the same::

    python -m gevent_specific SCRIPT [args...]
    python -m gevent_specific -m MODULE [args...]

patches first, then runs the script or module as ``python SCRIPT args`` or
``python -m MODULE args`` would. ``./manage.py superserver`` runs itself again that way
when the standard library is not patched.
"""
import os
import runpy
import sys
import traceback
import warnings

from gevent import monkey

__all__ = ['PatchedTooLate', 'StartedTooLate', 'patch', 'run']

USAGE = 'usage: python -m gevent_specific (SCRIPT | -m MODULE) [args...]'


class PatchedTooLate(RuntimeWarning):
    """gevent_specific was imported after ssl: its objects may stay unpatched."""


class StartedTooLate(RuntimeError):
    """gevent_specific was imported after a thread was started: it cannot patch safely."""


def _patch_database_drivers():
    try:
        import psycopg2  # noqa: F401
        from psycogreen.gevent import patch_psycopg
    except ImportError:
        return
    patch_psycopg()


def _share_one_asyncio_loop():
    try:
        import asgiref  # noqa: F401  (Django's dependency: without it, nothing to do)
    except ImportError:
        return
    from extensions import asyncloop
    asyncloop.install()


def patch():
    """Patch the standard library unless done already; True if this call patched."""
    if monkey.is_module_patched('socket'):
        return False
    threading = sys.modules.get('threading')
    if threading is not None and threading.active_count() > 1:
        raise StartedTooLate(
            'gevent_specific was imported after %d thread(s) started: import it first, '
            'before anything starts a thread' % (threading.active_count() - 1))
    if 'ssl' in sys.modules:
        warnings.warn('gevent_specific was imported too late (ssl was already imported): '
                      'import it first, before anything that uses ssl',
                      PatchedTooLate, stacklevel=2)
    monkey.patch_all()
    _patch_database_drivers()
    _share_one_asyncio_loop()
    return True


def run(argv):
    """Run ``SCRIPT args`` or ``-m MODULE args`` as __main__, as ``python`` runs them.

    runpy sets ``sys.argv[0]`` to the file it runs (for a script, its absolute path, which
    is also ``__file__``) and a ``__main__`` module of its own, so Django's autoreloader
    finds the same command line to restart as under plain ``python``. A script also gets
    its own directory as ``sys.path[0]`` instead of the current one, as ``python SCRIPT``
    gives it (unless ``-P`` or ``-I`` said to prepend nothing).
    """
    if len(argv) > 1 and argv[0] == '-m':
        sys.argv[:] = argv[1:]
        runpy.run_module(argv[1], run_name='__main__', alter_sys=True)
    elif argv and not argv[0].startswith('-'):
        sys.argv[:] = argv
        if not sys.flags.safe_path:
            sys.path[0] = os.path.dirname(os.path.realpath(argv[0]))
        runpy.run_path(os.path.abspath(argv[0]), run_name='__main__')
    else:
        sys.exit(USAGE)


def _patch_on_import():
    """``patch()`` for the import of this module, in any thread.

    Imported in a thread other than the main one it is always too late: that thread is
    one already started. ``StartedTooLate`` would then end that thread alone, and the
    process would go on without it: Django's ``runserver`` imports ``wsgi.py`` in its
    django-main-thread, so a ``wsgi.py`` importing this module left it serving nothing.
    The process exits instead (status 1), with the error and where it was imported.
    """
    try:
        patch()
    except StartedTooLate as error:
        threading = sys.modules['threading']
        if threading.current_thread() is threading.main_thread():
            raise
        sys.stderr.write('Traceback (most recent call last):\n%s%s.%s: %s\n'
                         '(imported in thread %r: the process exits)\n'
                         % (''.join(traceback.format_stack()[:-1]), __name__,
                            type(error).__name__, error, threading.current_thread().name))
        sys.stderr.flush()
        os._exit(1)


_patch_on_import()

if __name__ == '__main__':
    run(sys.argv[1:])

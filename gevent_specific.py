"""Patch the standard library for gevent: once per process, as early as possible.

Import it before anything else, in manage.py, wsgi.py or a gunicorn config::

    import gevent_specific  # noqa: F401  (first line)

Importing it again, or reloading it, patches nothing more. Imported after ``ssl`` was
imported, it still patches but warns with ``PatchedTooLate``. Imported after a thread
was started, it refuses with ``StartedTooLate``: patching then breaks the import
system (its locks change hands) and leaves that thread blocking. Where psycopg2 and
psycogreen are installed, psycopg2 is made cooperative too.
"""
import sys
import warnings

from gevent import monkey

__all__ = ['PatchedTooLate', 'StartedTooLate', 'patch']


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
    return True


patch()

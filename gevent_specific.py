"""Patch the standard library for gevent: once per process, as early as possible.

Import it before anything else, in manage.py, wsgi.py or a gunicorn config::

    import gevent_specific  # noqa: F401  (first line)

Importing it again, or reloading it, patches nothing more. Imported after ``ssl`` was
imported or after threads were started, it still patches but warns with
``PatchedTooLate``: those already hold unpatched, blocking objects. Where psycopg2 and
psycogreen are installed, psycopg2 is made cooperative too.
"""
import sys
import warnings

from gevent import monkey

__all__ = ['PatchedTooLate', 'patch']


class PatchedTooLate(RuntimeWarning):
    """gevent_specific was imported after parts of the standard library were in use."""


def _already_in_use():
    reasons = []
    if 'ssl' in sys.modules:
        reasons.append('ssl was already imported')
    threading = sys.modules.get('threading')
    if threading is not None and threading.active_count() > 1:
        reasons.append('%d thread(s) were already running' % (threading.active_count() - 1))
    return reasons


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
    reasons = _already_in_use()
    if reasons:
        warnings.warn('gevent_specific was imported too late (%s): import it first, '
                      'before anything that uses ssl or threads' % '; '.join(reasons),
                      PatchedTooLate, stacklevel=2)
    monkey.patch_all()
    _patch_database_drivers()
    return True


patch()

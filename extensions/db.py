"""Database connections of websocket views: none held while a view waits, few at once.

A websocket view runs as long as its connection, in its own greenlet, and Django's
connections belong to the greenlet that opened them. Left alone, 500 open websockets
whose views queried once hold 500 database connections, and a burst of messages opens as
many at once: PostgreSQL answers "too many clients". So, for websocket views only:

- ``release_connections()`` runs whenever a view is about to wait for its next message:
  each connection of its greenlet that is not inside ``atomic()`` is closed (with
  Django's pool: given back). A view that keeps a transaction open across messages keeps
  its connection until the transaction ends.
- ``limit_connections(size)``: at most ``size`` connections per database opened by
  websocket views exist at once in the process (``SUPERSERVER_DATABASE_CONNECTIONS``);
  a view that needs one more waits until another is released. Databases that use
  Django's pool are bounded by the pool. Plain requests are left as Django runs them.
"""
import functools
import threading
import weakref

from django.db import OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from gevent.lock import BoundedSemaphore

__all__ = ['release_connections', 'limit_connections', 'view_started', 'view_ended']

_view = threading.local()   # greenlet-local once gevent patched threading
_SLOT = '_superserver_slot'


def release_connections():
    """Close the current greenlet's connections that are not inside a transaction.

    Called before every wait for a message, so it looks only when a connection may
    have been opened since it last found none (looking costs more than an echo)."""
    if not getattr(_view, 'may_hold', True):
        return
    held = False
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            if connection.in_atomic_block:
                held = True
            else:
                connection.close()
    _view.may_hold = held


def view_started():
    """The current greenlet now runs a websocket view: its connections are limited.
    It may hold some already (a request before it on the same HTTP connection)."""
    _view.limited = _view.may_hold = True


def view_ended():
    """The websocket view ended: close its connections, which must not outlive it."""
    try:
        connections.close_all()
    finally:
        _view.limited = False


class ConnectionLimit:
    """A semaphore per database; a connection holds a slot from connect to close."""

    #: Seconds a view waits for a free slot before OperationalError.
    timeout = 30.0

    def __init__(self, size):
        self.size = size
        self._slots = {}

    def acquire(self, wrapper):
        if not getattr(_view, 'limited', False) or wrapper.settings_dict['OPTIONS'].get('pool'):
            return
        slots = self._slots.setdefault(wrapper.alias, BoundedSemaphore(self.size))
        if not slots.acquire(timeout=self.timeout):
            raise OperationalError(
                'no connection to database %r was free within %s s: %d are in use by '
                'websocket views (SUPERSERVER_DATABASE_CONNECTIONS)'
                % (wrapper.alias, self.timeout, self.size))
        # Given back on close, or when a connection is dropped without one.
        wrapper.__dict__[_SLOT] = weakref.finalize(wrapper, slots.release)

    @staticmethod
    def release(wrapper):
        slot = wrapper.__dict__.pop(_SLOT, None)
        if slot is not None:
            slot()


_limit = None
_wrapped = False


def limit_connections(size):
    """Bound the connections websocket views open at once to ``size`` per database
    (None: no bound). Wraps Django's ``connect`` and ``close`` once per process (the
    wrapper also tells ``release_connections`` a view connected); the same size
    again keeps the limit, and the slots taken, as they are."""
    global _limit, _wrapped
    if not _wrapped:
        _wrap_connect_and_close()
        _wrapped = True
    if size is None:
        _limit = None
    elif _limit is None or _limit.size != size:
        _limit = ConnectionLimit(size)


def _wrap_connect_and_close():
    connect, close = BaseDatabaseWrapper.connect, BaseDatabaseWrapper.close

    @functools.wraps(connect)
    def limited_connect(self):
        if getattr(_view, 'limited', False):
            _view.may_hold = True
        if _limit is not None:
            _limit.acquire(self)
        try:
            connect(self)
        except BaseException:
            if self.connection is None:
                ConnectionLimit.release(self)
            raise

    @functools.wraps(close)
    def limited_close(self):
        try:
            close(self)
        finally:
            if self.connection is None or self.closed_in_transaction:
                ConnectionLimit.release(self)

    BaseDatabaseWrapper.connect = limited_connect
    BaseDatabaseWrapper.close = limited_close

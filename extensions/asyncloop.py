"""asyncio beside gevent: one event loop in a native thread runs what Django awaits.

asyncio keeps the running event loop per OS thread, and greenlets share their thread.
Under a patched standard library, asgiref's ``async_to_sync`` (how Django's WSGI handler
runs ``async def`` views and async middleware) starts a loop in a "thread" that is a
greenlet, so while it runs every other greenlet of the process sees a running loop: a
second ``async_to_sync`` at once raises ``RuntimeError`` ("You cannot use AsyncToSync in
the same thread as an async event loop") and Django refuses the ORM in a sync view
(``SynchronousOnlyOperation``).

``install()`` (called by ``gevent_specific`` once it has patched) gives every
``async_to_sync`` called outside that thread one shared loop instead, running in a real
thread of its own, the way asgiref already shares the loop of an outer ``sync_to_async``.
No greenlet of the serving thread ever has a running loop, and:

- the calling greenlet waits cooperatively, in asgiref's ``CurrentThreadExecutor``, so
  other connections go on; a coroutine that blocks holds the loop's thread, not them;
- ``sync_to_async`` (thread-sensitive, asgiref's and Django's default; the async ORM's
  queries) comes back to run in the calling greenlet, with its database connections;
- ``sync_to_async(thread_sensitive=False)`` and ``run_in_executor(None, ...)`` run each
  call in a new greenlet of the thread that started the loop, as a patched
  ``ThreadPoolExecutor`` would in sync code (``offload`` is for blocking C code).

Not for ``async_to_sync(force_new_loop=True)``, which still makes a loop of its own.
"""
import asyncio
import functools
import os
from concurrent.futures import Future, ThreadPoolExecutor

import gevent
from asgiref.sync import AsyncToSync, SyncToAsync
from gevent import get_hub, monkey

__all__ = ['install', 'installed', 'shared_loop']

_start_native_thread = monkey.get_original('_thread', 'start_new_thread')
_native_lock = monkey.get_original('_thread', 'allocate_lock')

_loop = None
_loop_pid = None
_starting = _native_lock()


class GreenletExecutor(ThreadPoolExecutor):
    """The loop's default executor: each call in a new greenlet of ``hub``'s thread.

    Not the patched ``ThreadPoolExecutor`` asyncio would make, whose "threads" would be
    greenlets of the loop's thread, which the interpreter joins at exit from another
    thread (it hung there). asyncio accepts only a ``ThreadPoolExecutor``; none of its
    threads is ever started."""

    def __init__(self, hub):
        super().__init__(max_workers=1)
        self._hub = hub

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        self._hub.loop.run_callback_threadsafe(gevent.spawn, _run_into, future, fn, args, kwargs)
        return future

    def shutdown(self, wait=True, *, cancel_futures=False):
        pass   # nothing of its own to stop: the greenlets end with their calls


def _run_into(future, fn, args, kwargs):
    if future.set_running_or_notify_cancel():
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)


def _run(started, hub):
    global _loop
    _loop = asyncio.new_event_loop()   # made here: gevent's selector uses this thread's hub
    _loop.set_default_executor(GreenletExecutor(hub))
    _loop.call_soon(started.release)
    try:
        _loop.run_forever()
    finally:
        _loop.close()


def shared_loop():
    """The process's loop, running in its native thread: started on first use, and again
    in a forked child (a gunicorn worker), which does not inherit the thread."""
    global _loop_pid
    if _loop_pid != os.getpid():
        with _starting:
            if _loop_pid != os.getpid():
                started = _native_lock()
                started.acquire()
                _start_native_thread(_run, (started, get_hub()))
                started.acquire()   # a native wait, once per process: the loop runs
                _loop_pid = os.getpid()
    return _loop


def _calls_into_shared_loop(call):
    @functools.wraps(call)
    def __call__(self, *args, **kwargs):
        local = SyncToAsync.threadlocal
        if not self.force_new_loop and getattr(local, 'main_event_loop_pid', None) != os.getpid():
            loop = shared_loop()
            if not _in_loop_thread(loop):
                # What asgiref's SyncToAsync sets for the sync code it runs: its loop.
                local.main_event_loop, local.main_event_loop_pid = loop, os.getpid()
        # The loop's thread wakes this greenlet through its hub: keep that hub running
        # while it waits, even where nothing else would (a script, a management command).
        waiting = get_hub().loop.async_()
        waiting.start(_nothing)
        try:
            return call(self, *args, **kwargs)
        finally:
            waiting.close()
    __call__.calls_into_shared_loop = True
    return __call__


def _nothing():
    pass


def _in_loop_thread(loop):
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def install():
    """Have asgiref's ``AsyncToSync`` use the shared loop; once."""
    if not installed():
        AsyncToSync.__call__ = _calls_into_shared_loop(AsyncToSync.__call__)


def installed():
    """Whether ``async_to_sync`` uses the shared loop (``install()`` ran, in a patched
    process): then its calls, one after another, all run in that one loop."""
    return getattr(AsyncToSync.__call__, 'calls_into_shared_loop', False)

"""Run one blocking call in a native thread, so the event loop keeps serving.

Monkey-patching makes the standard library cooperative, not C extensions that do their
own I/O or long computations (an image library, a blocking client, a compression of
megabytes). Such a call holds every connection of the process for its duration; the
blocking detector of ``./manage.py superserver`` points at it. ``offload`` runs it in
gevent's pool of native threads and waits cooperatively for the result::

    from extensions import offload
    thumbnail = offload(make_thumbnail, image_bytes, size=(128, 128))

Not for the ORM: database connections belong to the greenlet that opened them.
"""
import gevent

__all__ = ['offload']


def offload(function, *args, **kwargs):
    """``function(*args, **kwargs)`` in a native thread; its result, or its exception."""
    return gevent.get_hub().threadpool.apply(function, args, kwargs)

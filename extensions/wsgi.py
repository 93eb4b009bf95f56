"""The Django project as superserver serves it, and a server for it.

``get_wsgi_application()`` is Django's plus what websocket views need (``serving``):
they run for hours in their own greenlets, so their database connections are released
while they wait for a message and closed when they end, and the number they open at
once is bounded (``extensions.db``); a ``StreamingHttpResponse`` over an async iterator
is streamed chunk by chunk (``AsyncStreamingContent``). ``make_server`` builds the
server with the limits, origin policy and proxies from the settings; the gunicorn
worker uses both.
"""
import django
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import StreamingHttpResponse
from werkzeug.wsgi import ClosingIterator

from . import asyncloop, db, sse
from .adaptation import WebSocketServer, direct_call
from .conf import origin_allowed, server_config, websocket_config

__all__ = ['get_wsgi_application', 'serving', 'make_server', 'CloseDatabaseConnections',
           'AsyncStreamingContent', 'bind_middleware_chain']

#: Connections per database that websocket views of one process open at once.
DEFAULT_DATABASE_CONNECTIONS = 10


class CloseDatabaseConnections:
    """WSGI middleware: a websocket view's connections are released while it waits for
    a message and closed when it ends. (It also hands the server a streaming response
    over an async iterator as ``AsyncStreamingContent``: the outermost Django-aware
    layer, so that websocket views pay no extra one.)"""

    def __init__(self, application):
        self.application = direct_call(application)

    def __call__(self, environ, start_response):
        websocket = environ.get('wsgi.websocket')
        if websocket is None:
            result = self.application(environ, start_response)
            if (isinstance(result, StreamingHttpResponse) and result.is_async
                    and asyncloop.installed()):
                return AsyncStreamingContent(result)
            return result
        websocket.before_waiting.append(db.release_connections)
        db.view_started()
        try:
            result = self.application(environ, start_response)
        except BaseException:
            db.view_ended()
            raise
        # Same greenlet, so the same (greenlet-local) connections as the view's.
        return ClosingIterator(result, db.view_ended)


class AsyncStreamingContent:
    """The body of a ``StreamingHttpResponse`` over an async iterator, each chunk awaited
    when the server is ready to send it.

    Django's WSGI handler leaves such a response to the server, whose iteration
    (``StreamingHttpResponse.__iter__``) awaits the whole iterator into a list before the
    first byte goes out, with a warning: an event stream or a slow source would reach
    the client only once it ended. Here each chunk is one ``async_to_sync`` call (on the
    loop of ``extensions.asyncloop``: this greenlet waits cooperatively), so chunks go
    out as they are made, as Django's ASGI handler sends them. ``close()`` (the server
    calls it when the body is sent or the client left) closes the iterator, whose
    ``finally`` then runs, and the response (Django's ``request_finished``). Closing
    ``response.__aiter__()`` alone, as Django's ASGI handler does, would not reach the
    view's iterator: it is wrapped in two async generators of Django's (``__aiter__``
    and ``streaming_content``), and a generator's ``aclose()`` does not close the one it
    iterates; so the response's own iterator (``_iterator``, what the view or the last
    middleware to replace ``streaming_content`` gave) is closed too.

    Only where ``async_to_sync`` runs in the shared loop (``asyncloop.installed()``: a
    patched process, as both servers are). Elsewhere (the live server of an unpatched
    test run) each call runs a loop of its own, which closes the iterator's generators
    when it ends (``asyncio.run``'s ``shutdown_asyncgens``): the stream would stop
    after its first chunk, so Django's iteration, whole, is left in place there."""

    def __init__(self, response):
        self.response = response
        self._chunks = response.__aiter__()   # the chunks as bytes

    def __iter__(self):
        next_chunk = async_to_sync(self._next_chunk)
        while (chunk := next_chunk()) is not None:
            yield chunk

    async def _next_chunk(self):
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None

    async def _close_chunks(self):
        await self._chunks.aclose()
        close = getattr(getattr(self.response, '_iterator', None), 'aclose', None)
        if close is not None:
            await close()

    def close(self):
        try:
            async_to_sync(self._close_chunks)()
        finally:
            self.response.close()


def bind_middleware_chain(handler):
    """Have each layer of the Django handler's middleware chain call the next middleware
    through its bound ``__call__``, as ``direct_call`` does for WSGI layers.

    Django wraps every middleware instance in a function (``convert_exception_to_response``)
    that calls the instance; calling an instance takes a C stack frame, which the
    greenlet of every open websocket keeps: 0.7 KiB per middleware and connection, 5 KiB
    with startproject's seven. The closure cell that holds the instance gets the bound
    method instead; layers of any other shape are left as they are."""
    layer = getattr(handler, '_middleware_chain', None)
    while layer is not None:
        middleware = getattr(layer, '__wrapped__', None)
        call = direct_call(middleware)
        if call is middleware:
            break   # the innermost layer (the view's), or one this does not know
        for cell in layer.__closure__ or ():
            if cell.cell_contents is middleware:
                cell.cell_contents = call
        layer = getattr(middleware, 'get_response', None)


def serving(application):
    """``application`` (Django's, as a project's wsgi.py makes it) ready for
    ``WebSocketServer``; an application already made ready is returned as it is."""
    db.limit_connections(getattr(settings, 'SUPERSERVER_DATABASE_CONNECTIONS',
                                 DEFAULT_DATABASE_CONNECTIONS))
    if isinstance(application, CloseDatabaseConnections):
        return application
    bind_middleware_chain(application)
    return CloseDatabaseConnections(application)


def get_wsgi_application():
    """The project's WSGI application, ready for ``WebSocketServer``."""
    django.setup(set_prefix=False)
    return serving(WSGIHandler())


def make_server(listener, application=None, **kwargs):
    """A ``WebSocketServer`` for the project: limits, origins and proxies from its
    settings; a graceful shutdown ends its Server-Sent Events streams."""
    if application is None:
        application = get_wsgi_application()
    kwargs.setdefault('websocket_config', websocket_config())
    kwargs.setdefault('server_config', server_config())
    kwargs.setdefault('origin_policy', origin_allowed)
    kwargs.setdefault('on_shutdown', [sse.end_streams])
    return WebSocketServer(listener, application, **kwargs)

"""Django's own features served by superserver (tests/test_django_features.py): streaming
responses over sync and async iterators, a large ``FileResponse``, and Django 6.0's
template partials and Content Security Policy on a page that opens a websocket.

The views are plain Django; nothing here knows about superserver.
"""
import asyncio
import logging
import os
import threading
import time

from django.http import FileResponse, Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import render

logger = logging.getLogger('tests.project')

#: What ``stream_async`` logs when its generator ends, however it ends.
ASYNC_STREAM_ENDED = 'async stream %s ended after %d chunks'

#: The file ``download`` serves: a path the test writes before it starts the server.
DOWNLOAD = 'SUPERSERVER_TEST_DOWNLOAD'


def _chunks(request):
    return int(request.GET.get('count', 5)), float(request.GET.get('interval', 0.2))


def stream_sync(request):
    """``?count=`` chunks (default 5), ``?interval=`` seconds apart (default 0.2), from a
    generator that sleeps between them (time.sleep, which gevent made cooperative)."""
    count, interval = _chunks(request)

    def chunks():
        for i in range(count):
            if i:
                time.sleep(interval)
            yield 'chunk %d %.6f\n' % (i, time.time())

    return StreamingHttpResponse(chunks(), content_type='text/plain')


def stream_async(request):
    """The same chunks from an async generator awaiting asyncio.sleep between them; it
    logs ASYNC_STREAM_ENDED (with ``?name=``) when it ends, finished or closed."""
    count, interval = _chunks(request)

    async def chunks():
        sent = 0
        try:
            for i in range(count):
                if i:
                    await asyncio.sleep(interval)
                yield 'chunk %d %.6f\n' % (i, time.time())
                sent += 1
        finally:
            logger.info(ASYNC_STREAM_ENDED, request.GET.get('name', '-'), sent)

    return StreamingHttpResponse(chunks(), content_type='text/plain')


def threads(request):
    """How many threads the process runs: ``threading.active_count()`` (under gevent's
    patch, the threading module's view) and the operating system's."""
    try:
        native = len(os.listdir('/proc/self/task'))
    except OSError:
        native = None
    return JsonResponse({'pid': os.getpid(), 'active_count': threading.active_count(),
                         'native': native})


def download(request):
    """The file named by the environment variable DOWNLOAD, as a ``FileResponse``."""
    path = os.environ.get(DOWNLOAD)
    if not path:
        raise Http404('no %s in the environment' % DOWNLOAD)
    return FileResponse(open(path, 'rb'), as_attachment=True, filename='download.bin')


def partials(request):
    """The whole page, or (``?partial=item``) one partial of it: Django 6.0's
    ``template.html#name``."""
    name = request.GET.get('partial')
    template = 'features/partials.html' + ('#' + name if name else '')
    return render(request, template, {'names': ['ada', 'grace'], 'name': 'linus'})


def csp_page(request):
    """A page whose inline script (with the CSP nonce) opens a websocket to /ws/echo/."""
    return render(request, 'features/csp.html')

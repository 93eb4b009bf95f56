"""ws4redis's template context: ``WEBSOCKET_URI`` and ``WS4REDIS_HEARTBEAT``.

Add ``'extensions.ws4redis.context_processors.default'`` to the template engine's
``context_processors`` in place of ``'ws4redis.context_processors.default'``.
"""
import json

from django.utils.safestring import mark_safe

from . import conf


def default(request):
    """``WEBSOCKET_URI`` (ws:// or wss://, this host, ``WEBSOCKET_URL``) and
    ``WS4REDIS_HEARTBEAT`` as a JavaScript literal (a string, or null)."""
    scheme = 'wss://' if request.is_secure() else 'ws://'
    heartbeat = conf.heartbeat()
    return {
        'WEBSOCKET_URI': scheme + request.get_host() + conf.websocket_url(),
        'WS4REDIS_HEARTBEAT': mark_safe(json.dumps(heartbeat) if heartbeat else 'null'),
    }

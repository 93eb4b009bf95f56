"""superserver's Django settings, read when a server is built, never at import time.

Limits of each websocket (defaults in ``extensions.config.WebSocketConfig``)::

    SUPERSERVER_MAX_MESSAGE_SIZE   SUPERSERVER_MAX_QUEUE      SUPERSERVER_CLOSE_TIMEOUT
    SUPERSERVER_PING_INTERVAL      SUPERSERVER_PING_TIMEOUT   SUPERSERVER_HANDSHAKE_TIMEOUT

and of their permessage-deflate compression (RFC 7692)::

    SUPERSERVER_COMPRESSION                    SUPERSERVER_COMPRESSION_CONTEXT_TAKEOVER
    SUPERSERVER_COMPRESSION_MAX_WINDOW_BITS    SUPERSERVER_COMPRESSION_MEMORY_LEVEL
    SUPERSERVER_COMPRESSION_LEVEL              SUPERSERVER_COMPRESSION_MIN_SIZE
    SUPERSERVER_COMPRESSION_MIN_SAVING

Of the server (``extensions.config.ServerConfig``)::

    SUPERSERVER_MAX_CONNECTIONS    SUPERSERVER_GRACEFUL_TIMEOUT   SUPERSERVER_TRUSTED_PROXIES

Origins (cross-site websocket hijacking protection)::

    SUPERSERVER_ALLOWED_ORIGINS = ['https://app.example.com']   # or ['*'] for any
    SUPERSERVER_REQUIRE_ORIGIN = False   # True: refuse clients that send no Origin
"""
import dataclasses
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port
from django.utils.http import is_same_domain

from .config import ServerConfig, WebSocketConfig
from .handshake import origin_host, same_origin


def _from_settings(config_class):
    values = {}
    for field in dataclasses.fields(config_class):
        name = 'SUPERSERVER_' + field.name.upper()
        if hasattr(settings, name):
            values[field.name] = getattr(settings, name)
    return config_class(**values)


def websocket_config():
    """The ``WebSocketConfig`` the project's settings ask for."""
    return _from_settings(WebSocketConfig)


def server_config():
    """The ``ServerConfig`` the project's settings ask for."""
    config = _from_settings(ServerConfig)
    return dataclasses.replace(config, trusted_proxies=tuple(config.trusted_proxies))


def _allowed_hosts():
    hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not hosts:
        hosts = ['.localhost', '127.0.0.1', '[::1]']   # as Django's own host check
    # A bare '*' lets any Host through; it must not let any site open websockets.
    return [pattern for pattern in hosts if pattern != '*']


def _trusted_origin(origin, host):
    """Does CSRF_TRUSTED_ORIGINS trust ``origin``? (Django's CSRF rules, wildcards too)."""
    scheme = urlsplit(origin).scheme
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        if '*' not in trusted:
            if origin == trusted:
                return True
        else:
            parsed = urlsplit(trusted)
            if parsed.scheme == scheme and is_same_domain(host, parsed.netloc.lstrip('*')):
                return True
    return False


def origin_allowed(origin, environ):
    """May a page from ``origin`` open a websocket? The policy Django projects run with.

    Allowed: no Origin (a non-browser client) unless SUPERSERVER_REQUIRE_ORIGIN;
    SUPERSERVER_ALLOWED_ORIGINS; the request's own host; CSRF_TRUSTED_ORIGINS; and
    hosts that ALLOWED_HOSTS names. Anything else, 'null' included, gets 403.
    """
    if origin is None:
        return not getattr(settings, 'SUPERSERVER_REQUIRE_ORIGIN', False)
    allowed = getattr(settings, 'SUPERSERVER_ALLOWED_ORIGINS', ())
    if '*' in allowed or origin in allowed or same_origin(origin, environ):
        return True
    host = origin_host(origin)
    if host is None:
        return False
    if _trusted_origin(origin, host):
        return True
    domain, _ = split_domain_port(host)
    return any(is_same_domain(domain, pattern) for pattern in _allowed_hosts())

"""The websocket view: ``WEBSOCKET_URL`` + facility, as ws4redis's server answered it.

An ordinary superserver view: Django's middleware already ran, so ``request.user`` and
``request.session`` are those of the page's cookies. ``WS4REDIS_PROCESS_REQUEST`` may
still change the request (a token login, say) before the channels are worked out, and
``WS4REDIS_ALLOWED_CHANNELS`` may narrow them, or refuse the socket with
``PermissionDenied``: the client then gets 403 Forbidden, before any handshake. If
Redis cannot be reached before the handshake, the client gets 503.
"""
import logging

import redis
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpResponse, HttpResponseForbidden

from ..decorators import require_websocket
from . import conf, subscriber
from .relay import Relay

logger = logging.getLogger('superserver.ws4redis')


@require_websocket
def websocket(request, facility):
    if not conf.uses_redis_broker():
        raise ImproperlyConfigured(conf.REDIS_BROKER_NEEDED)
    try:
        keys, echo = _requested(request)
    except PermissionDenied as refusal:
        logger.info('%s refused: %s', request.path, refusal)
        return HttpResponseForbidden('%s\n' % (str(refusal) or 'Forbidden'),
                                     content_type='text/plain; charset=utf-8')
    relay = Relay(request.environ['wsgi.websocket'],
                  subscribe_to=subscriber.channels(request, facility, keys, 'subscribe'),
                  publish_to=subscriber.channels(request, facility, keys, 'publish'),
                  echo=echo, heartbeat=conf.heartbeat(), expire=conf.expire())
    try:
        relay.run()
    except redis.RedisError as error:   # before the handshake
        logger.warning('%s: Redis failed (%s)', request.path, error)
        return HttpResponse('Redis is unreachable; try again later.\n', status=503,
                            content_type='text/plain; charset=utf-8')


def _requested(request):
    """(audience keys, echo) of the request, after the project's hooks had their say."""
    process_request = conf.hook('WS4REDIS_PROCESS_REQUEST')
    if process_request is not None:
        process_request(request)
    keys, echo = subscriber.requested(request.GET)
    allowed_channels = conf.hook('WS4REDIS_ALLOWED_CHANNELS')
    if allowed_channels is not None:
        keys = list(allowed_channels(request, keys))
    return keys, echo

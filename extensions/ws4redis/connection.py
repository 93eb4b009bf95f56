"""The app's own Redis client: what ws4redis did besides subscribing (PUBLISH, SETEX, GET).

It talks to ``WS4REDIS_CONNECTION`` when that is set (as ws4redis did), else to the
Redis of ``SUPERSERVER_BROKER``. Subscriptions never use it: they go through
superserver's broker, one connection per process.
"""
import functools

import redis
from django.core.signals import setting_changed

from ..redisclients import blocking
from . import conf


@functools.cache
def client():
    """The process's Redis client (redis-py keeps a pool of connections behind it)."""
    options = conf.connection()
    if options is not None:   # host/port/db/password, or unix_socket_path
        return blocking(redis.Redis(**options))
    return blocking(redis.Redis.from_url(conf.broker_url()))


def _forget_client(setting, **kwargs):
    if setting in ('WS4REDIS_CONNECTION', 'SUPERSERVER_BROKER'):
        client.cache_clear()


setting_changed.connect(_forget_client, dispatch_uid=__name__)


def publish(channels, message, expire):
    """Publish ``message`` (bytes) on each channel and, when ``expire`` > 0, keep it there
    for that many seconds for subscribers to come (one round trip for all)."""
    if not channels:
        return
    pipeline = client().pipeline(transaction=False)
    for channel in channels:
        pipeline.publish(channel, message)
        if expire > 0:
            pipeline.setex(channel, expire, message)
    pipeline.execute()


def kept(channels):
    """The message kept on each channel (bytes), or None where there is none."""
    return client().mget(channels) if channels else []

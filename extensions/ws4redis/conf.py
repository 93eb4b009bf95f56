"""The WS4REDIS_* settings, with ws4redis's defaults, read when used (never at import)."""
from django.conf import settings
from django.utils.module_loading import import_string

#: ws4redis's only subscriber class; any other WS4REDIS_SUBSCRIBER is refused (checks.py).
UPSTREAM_SUBSCRIBER = 'ws4redis.subscriber.RedisSubscriber'


def websocket_url():
    """Where websockets are served: the facility is the rest of the path."""
    return getattr(settings, 'WEBSOCKET_URL', '/ws/')


def expire():
    """Seconds a published message is kept for new subscribers; 0: not kept."""
    return getattr(settings, 'WS4REDIS_EXPIRE', 3600)


def prefix():
    """What channel names start with: 'WS4REDIS_PREFIX:', or nothing."""
    value = getattr(settings, 'WS4REDIS_PREFIX', None)
    return '%s:' % value if value else ''


def heartbeat():
    """The heartbeat string, or None: no heartbeats."""
    return getattr(settings, 'WS4REDIS_HEARTBEAT', None)


def connection():
    """WS4REDIS_CONNECTION (redis-py keyword arguments), or None when not set."""
    return getattr(settings, 'WS4REDIS_CONNECTION', None)


def broker_url():
    return getattr(settings, 'SUPERSERVER_BROKER', 'memory://')


def subscriber():
    return getattr(settings, 'WS4REDIS_SUBSCRIBER', UPSTREAM_SUBSCRIBER)


def hook(name):
    """The callable a hook setting names (a callable or its dotted path), or None."""
    value = getattr(settings, name, None)
    return import_string(value) if isinstance(value, str) else value


REDIS_BROKER_NEEDED = (
    "extensions.ws4redis subscribes through superserver's broker, which must be Redis: "
    "set SUPERSERVER_BROKER = 'redis://host:port/db' (the Redis your ws4redis "
    "publishers use)")


def uses_redis_broker():
    return broker_url().startswith(('redis://', 'rediss://', 'unix://'))

"""``RedisPublisher``: ws4redis's publisher API, so publishers change only their imports::

    from extensions.ws4redis.publisher import RedisPublisher
    from extensions.ws4redis.redis_store import RedisMessage, SELF

    publisher = RedisPublisher(facility='news', broadcast=True)
    publisher.publish_message(RedisMessage('hello'))           # kept WS4REDIS_EXPIRE s
    publisher.fetch_message(request, 'news')                    # the kept message, or None

Runs anywhere Django's settings do (a view, a Celery task, a shell); it needs no server.
"""
from . import conf, connection
from .redis_store import SELF, RedisMessage, message_channels

__all__ = ['RedisPublisher']

#: ``fetch_message``'s audiences, in the order it looks in them, as ``message_channels``
#: arguments naming the request's own.
AUDIENCES = {'session': {'sessions': [SELF]}, 'user': {'users': [SELF]},
             'group': {'groups': [SELF]}, 'broadcast': {'broadcast': True}}


class RedisPublisher:
    """Publishes to the channels of one facility and its audiences.

    Keyword arguments as ws4redis's: ``facility``, ``broadcast=True``, ``users=[...]``,
    ``groups=[...]``, ``sessions=[...]`` (``SELF`` in a list: the request's own) and
    ``request``.
    """

    def __init__(self, **audiences):
        self.channels = message_channels(**audiences)

    def publish_message(self, message, expire=None):
        """Publish ``message`` (a ``RedisMessage``) and keep it ``expire`` seconds
        (default ``WS4REDIS_EXPIRE``; 0: not kept) for subscribers who come later."""
        if not isinstance(message, RedisMessage):
            raise ValueError('message object is not of type RedisMessage')
        connection.publish(self.channels, message, conf.expire() if expire is None else expire)

    def fetch_message(self, request, facility, audience='any'):
        """The message kept for ``request`` on ``facility`` (bytes), or None.

        ``audience`` is 'session', 'user', 'group', 'broadcast' or 'any' (each in that
        order, the first kept message wins).
        """
        if audience != 'any' and audience not in AUDIENCES:
            raise ValueError("audience must be one of %s or 'any', not %r"
                             % (', '.join(AUDIENCES), audience))
        wanted = AUDIENCES if audience == 'any' else (audience,)
        channels = [channel for name in wanted
                    for channel in message_channels(request, facility, **AUDIENCES[name])]
        return next((message for message in connection.kept(channels) if message), None)

"""Redis clients that many greenlets can use at once.

redis-py's pool opens up to 100 connections and then raises "Too many connections". Under
gevent a thousand views may ask at the same moment (a thousand reconnecting clients
reading the history they missed), so superserver's clients wait for a free connection
instead, for at most ``WAIT`` seconds.
"""
import redis

#: Connections a client keeps to its Redis at most, its pub/sub connection included.
MAX_CONNECTIONS = 50
#: Seconds a greenlet waits for a free connection before ``redis.ConnectionError``: all
#: of them busy means a busy Redis or process, not one that is down.
WAIT = 60


def blocking(client):
    """``client``'s server and options, with a pool that waits for a free connection."""
    pool = client.connection_pool
    return redis.Redis(connection_pool=redis.BlockingConnectionPool(
        connection_class=pool.connection_class, max_connections=MAX_CONNECTIONS,
        timeout=WAIT, **pool.connection_kwargs))

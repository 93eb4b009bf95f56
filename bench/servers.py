"""The servers measured: how each is started, and where it serves what.

``command`` is formatted with ``{python}`` and ``{port}``; ``paths`` maps a role
(``echo``, ``broadcast``, ``http``) to the URL path that plays it. ``peer`` servers get
a ratio column in the report; superserver's variants and the client ceiling do not.
"""
from dataclasses import dataclass, field, replace

MANAGE = ('{python}', 'bench/manage.py')


@dataclass(frozen=True)
class Server:
    key: str                  # what --servers names
    name: str                 # what the report shows
    command: tuple
    paths: dict = field(hash=False)
    peer: bool = True


SUPERSERVER = Server(
    'superserver', 'superserver',
    (*MANAGE, 'superserver', '--noreload', '--nodebugger', '--noblockcheck', '127.0.0.1:{port}'),
    {'echo': '/ws/echo/', 'broadcast': '/ws/broadcast/', 'http': '/hello/'}, peer=False)

SUPERSERVER_PUBSUB = replace(
    SUPERSERVER, key='superserver-pubsub', name='superserver, pubsub.forward',
    paths={'broadcast': '/ws/broadcast-pubsub/'})

GEVENT_WEBSOCKET = Server(
    'gevent-websocket', 'gevent-websocket',
    ('{python}', '-m', 'bench.peers.gevent_websocket', '{port}'),
    {'echo': '/echo', 'broadcast': '/broadcast'})

WEBSOCKETS = Server(
    'websockets', 'python-websockets',
    ('{python}', '-m', 'bench.peers.websockets_server', '{port}'),
    {'echo': '/echo', 'broadcast': '/broadcast'})

# uvicorn's defaults: with uvicorn[standard], uvloop and httptools; its access log on.
CHANNELS = Server(
    'channels', 'Channels on uvicorn',
    ('{python}', '-m', 'uvicorn', 'bench.project.asgi:application',
     '--host', '127.0.0.1', '--port', '{port}'),
    {'echo': '/ws/echo/', 'broadcast': '/ws/broadcast/'})

GUNICORN = Server(
    'gunicorn', 'gunicorn -k gevent',
    ('{python}', '-m', 'gunicorn', '-k', 'gevent', '-w', '1', '-b', '127.0.0.1:{port}',
     'bench.project.wsgi'),
    {'http': '/hello/'})

PYWSGI = Server(
    'pywsgi', 'gevent.pywsgi',
    ('{python}', '-m', 'bench.peers.pywsgi_django', '{port}'),
    {'http': '/hello/'})

CEILING = Server(
    'ceiling', 'client ceiling (picows server)',
    ('{python}', '-m', 'bench.peers.picows_server', '{port}'),
    {'echo': '/echo', 'broadcast': '/broadcast'}, peer=False)

ALL = (SUPERSERVER, SUPERSERVER_PUBSUB, GEVENT_WEBSOCKET, WEBSOCKETS, CHANNELS, GUNICORN,
       PYWSGI, CEILING)

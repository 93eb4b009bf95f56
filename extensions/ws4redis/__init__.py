"""A home for django-websocket-redis (ws4redis) projects on superserver.

An optional Django app (``INSTALLED_APPS += ['extensions.ws4redis']``, label
``superserver_ws4redis``) that serves ws4redis's websocket URL, its query string, channel
names, persistence and heartbeats from an ordinary superserver view, and offers its
publisher API under ``extensions.ws4redis`` instead of ``ws4redis``. Clients
(``ws4redis.js``) stay as they are, and an old publisher still on ws4redis can share the
Redis during a migration. docs/ws4redis.md is the migration guide.

It is not a copy of ws4redis: subscriptions go through superserver's broker (one Redis
connection per process, not one per socket), and ws4redis's own server (its WSGI
server, uWSGI and runserver glue) has no counterpart here.
"""

"""Views of the PostgreSQL tests (tests/test_postgres.py): the ORM under gevent.

They work on any database; the tests serve them with the PostgreSQL cluster they start
(``SUPERSERVER_TEST_POSTGRES``, see settings.py).
"""
from django.contrib.auth.models import Permission
from django.db import connection
from django.http import HttpResponse, JsonResponse

from extensions.decorators import require_websocket


def driver(request):
    """The driver that really talks to the database, and the function it waits with.

    The tests hide psycopg to make Django fall back to psycopg2: this says whether it
    did. The wait function says whether the driver yields to gevent while it waits:
    psycopg 3 must not use its C ``wait_c`` (it does not once select is patched),
    psycopg2 must use psycogreen's callback (gevent_specific sets it).
    """
    connection.ensure_connection()
    name = type(connection.connection).__module__.partition('.')[0]
    if name == 'psycopg2':
        from psycopg2.extensions import get_wait_callback
        wait = get_wait_callback()
    else:
        from psycopg.waiting import wait
    return JsonResponse({'driver': name, 'wait': getattr(wait, '__name__', None)})


def sleep(request):
    """``SELECT pg_sleep(seconds)`` on the ORM's connection: a slow query that no other
    client may wait for."""
    seconds = float(request.GET.get('seconds', 2))
    with connection.cursor() as cursor:
        cursor.execute('SELECT pg_sleep(%s)', [seconds])
    return HttpResponse('slept %g s' % seconds)


@require_websocket
def count_permissions(request):
    """Answers each message (a codename, e.g. ``add_user``) with how many permissions
    have it: one ORM query per message, in a view that spends most of its life waiting
    for the next one. ``migrate`` makes the permissions."""
    websocket = request.environ['wsgi.websocket']
    for codename in websocket:
        websocket.send(str(Permission.objects.filter(codename=codename).count()))

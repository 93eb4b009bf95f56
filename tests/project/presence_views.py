"""Views of the presence tests: a room to be in, a socket watching it, its members."""
import os
from contextlib import nullcontext

from django.http import HttpResponse, JsonResponse

from extensions import presence
from extensions.decorators import require_websocket
from extensions.pubsub import forward, group_channel


@require_websocket
def room(request, name):
    """In the room while connected, as ``?member=`` (else as ``member_of``); says 'joined'
    once its connection is counted. With ``?events``, its join and leave events come too
    (its own join may come before or after 'joined')."""
    websocket = request.environ['wsgi.websocket']
    channel = group_channel(name)
    member = request.GET.get('member') or presence.member_of(request)
    events = [presence.presence_channel(channel)] if 'events' in request.GET else []
    with forward(websocket, *events) if events else nullcontext(), \
            presence.join(channel, member):
        websocket.send('joined')
        for _ in websocket:
            pass


@require_websocket
def watch(request, name):
    """The room's join and leave events, without being in it; says 'watching' first."""
    websocket = request.environ['wsgi.websocket']
    with forward(websocket, presence.presence_channel(group_channel(name))):
        websocket.send('watching')
        for _ in websocket:
            pass


def members(request, name):
    """The room's members across every process, and which process answered."""
    try:
        members = presence.presence(group_channel(name))
    except presence.PresenceError as error:
        return HttpResponse(str(error), status=503, content_type='text/plain')
    return JsonResponse({'members': members, 'pid': os.getpid()})


def whoami(request):
    """The member this request counts as; gives an anonymous visitor a session."""
    return HttpResponse(presence.member_of(request), content_type='text/plain')

import json
import time
from datetime import datetime, timezone

import gevent
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from extensions import sse
from extensions.decorators import login_required, require_websocket
from extensions.presence import join, presence, presence_channel
from extensions.pubsub import BEGINNING, forward, group_channel, publish


def index(request):
    """A page that opens a websocket to the echo view and shows the exchange."""
    return render(request, 'superserver/index.html')


@require_websocket(max_message_size=16 * 2**20)   # Autobahn's largest messages are 16 MiB
def echo(request):
    """Send every message back as it came: text as text, binary as binary."""
    websocket = request.environ['wsgi.websocket']
    for message in websocket:
        websocket.send(message)


def signup(request):
    """Make an account and log in with it: the chat needs a name."""
    form = UserCreationForm(request.POST or None)
    if form.is_valid():
        login(request, form.save())
        target = request.GET.get('next', '')
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
            target = 'chat'
        return redirect(target, **({'room': 'lobby'} if target == 'chat' else {}))
    return render(request, 'registration/signup.html', {'form': form})


@login_required
def chat_page(request, room):
    return render(request, 'superserver/chat.html', {'room': room})


@login_required
@require_websocket
def chat(request, room):
    """A chat room is a channel: what one member says, every member (in every server
    process, with Redis) hears, and who is in the room is its presence.

    The room keeps its recent messages (``SUPERSERVER_CHANNEL_HISTORY``). The page asks
    for those after the last position it showed (``?since=``; none: all that is kept), so
    a reconnect loses nothing and a reload shows the conversation. Each frame carries its
    position; a ``reset`` frame says the page's position is too old to recover from."""
    websocket = request.environ['wsgi.websocket']
    channel = group_channel('chat-%s' % room)
    user = request.user.get_username()
    since = request.GET.get('since') or BEGINNING
    with forward(websocket, channel, presence_channel(channel), since={channel: since},
                 positions=True), join(channel, user):
        websocket.send(json.dumps({'kind': 'members', 'members': presence(channel)}))
        for text in websocket:
            if isinstance(text, str) and text.strip():
                publish(channel, {'kind': 'message', 'user': user, 'text': text[:2000]})


def clock_page(request):
    return render(request, 'superserver/clock.html')


def clock(request):
    """One event a second over SSE, its id the Unix time. A browser that reconnects
    gets the seconds it missed (up to a minute) before the clock goes on."""
    last = sse.last_event_id(request)
    now = int(time.time())
    second = max(int(last) + 1, now - 60) if last and last.isdigit() else now

    def ticks(second):
        while True:
            gevent.sleep(max(0, second - time.time()))
            moment = datetime.fromtimestamp(second, timezone.utc)
            yield sse.Event(moment.strftime('%H:%M:%S UTC'), id=second)
            second += 1

    return sse.stream(ticks(second), retry=1000)

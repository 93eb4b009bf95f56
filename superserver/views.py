import time
from contextlib import suppress
from datetime import datetime, timezone

import gevent
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from extensions import sse
from extensions.decorators import require_websocket
from extensions.pubsub import PublishError, forward, group_channel, publish


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
    process, with Redis) hears, with notices when people join and leave."""
    websocket = request.environ['wsgi.websocket']
    channel = group_channel('chat-%s' % room)
    user = request.user.get_username()
    with forward(websocket, channel):
        publish(channel, {'kind': 'join', 'user': user})
        try:
            for text in websocket:
                if isinstance(text, str) and text.strip():
                    publish(channel, {'kind': 'message', 'user': user, 'text': text[:2000]})
        finally:
            with suppress(PublishError):   # a Redis outage must not hide why we are here
                publish(channel, {'kind': 'leave', 'user': user})


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

from django.shortcuts import render

from extensions.decorators import require_websocket


def index(request):
    """A page that opens a websocket to the echo view and shows the exchange."""
    return render(request, 'superserver/index.html')


@require_websocket(max_message_size=16 * 2**20)   # Autobahn's largest messages are 16 MiB
def echo(request):
    """Send every message back as it came: text as text, binary as binary."""
    websocket = request.environ['wsgi.websocket']
    for message in websocket:
        websocket.send(message)

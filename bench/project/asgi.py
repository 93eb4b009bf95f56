"""The ASGI application uvicorn serves: Django for HTTP, Channels for websockets, routed
as the Channels tutorial does (origin check, sessions and users, URL routing)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'bench.project.settings')
django_application = get_asgi_application()   # sets Django up before consumers import models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from . import consumers  # noqa: E402

application = ProtocolTypeRouter({
    'http': django_application,
    'websocket': AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter([
        path('ws/echo/', consumers.Echo.as_asgi()),
        path('ws/broadcast/', consumers.Broadcast.as_asgi()),
    ]))),
})

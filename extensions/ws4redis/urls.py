"""``WEBSOCKET_URL`` + facility: include at the root of the project's URLconf::

    path('', include('extensions.ws4redis.urls')),
"""
import re

from django.urls import re_path

from . import conf, views

urlpatterns = [
    re_path(r'^%s(?P<facility>.*)$' % re.escape(conf.websocket_url().lstrip('/')),
            views.websocket, name='ws4redis'),
]

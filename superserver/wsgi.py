"""WSGI entry point of the demo project, for any server that loads ``application``."""
import gevent_specific  # noqa: F401  (first: patch the standard library before it is used)

import os

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'superserver.settings')

from extensions.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()

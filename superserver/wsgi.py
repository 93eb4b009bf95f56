"""WSGI entry point of the demo project, as ``startproject`` writes it.

``./manage.py superserver`` and the gunicorn worker patch the standard library before
they import it, and serve Django's application with what websocket views need
(``extensions.wsgi.serving``), so it needs nothing of superserver's.
"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'superserver.settings')

application = get_wsgi_application()

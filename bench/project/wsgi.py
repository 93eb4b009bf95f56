"""WSGI config as ``startproject`` writes it: what gunicorn and gevent.pywsgi serve."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'bench.project.settings')

application = get_wsgi_application()

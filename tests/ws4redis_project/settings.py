"""ws4redis's settings as a project has them; only the imports changed.

``SUPERSERVER_TEST_BROKER`` is the test's redis-server (WS4REDIS_CONNECTION names the
same one, unless ``WS4REDIS_TEST_PORT`` says another port), ``SUPERSERVER_TEST_DATABASE``
its SQLite file, and ``WS4REDIS_TEST_PREFIX`` sets WS4REDIS_PREFIX.
"""
import os
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent

SECRET_KEY = 'tests-only'
DEBUG = False
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']

INSTALLED_APPS = [
    'django.contrib.auth',
    'django.contrib.contenttypes',
    'django.contrib.sessions',
    'django.contrib.staticfiles',
    'extensions',
    'extensions.ws4redis',   # was: 'ws4redis'
]
MIDDLEWARE = [
    'django.contrib.sessions.middleware.SessionMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
    'django.contrib.auth.middleware.AuthenticationMiddleware',
]
ROOT_URLCONF = 'tests.ws4redis_project.urls'
TEMPLATES = [{
    'BACKEND': 'django.template.backends.django.DjangoTemplates',
    'DIRS': [HERE / 'templates'],
    'OPTIONS': {'context_processors': [
        'django.template.context_processors.request',
        'django.template.context_processors.static',
        'django.contrib.auth.context_processors.auth',
        'extensions.ws4redis.context_processors.default',   # was: 'ws4redis.context_...'
    ]},
}]
DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3',
                         'NAME': os.environ.get('SUPERSERVER_TEST_DATABASE', ':memory:')}}
USE_TZ = True
DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'

STATIC_URL = '/static/'
# jQuery, from the npm registry (tests/node, installed by make test).
STATICFILES_DIRS = [HERE.parent / 'node' / 'node_modules' / 'jquery' / 'dist']
STATICFILES_FINDERS = [
    'django.contrib.staticfiles.finders.FileSystemFinder',
    'django.contrib.staticfiles.finders.AppDirectoriesFinder',
    'extensions.ws4redis.finders.UpstreamFinder',   # ws4redis.js, from django-websocket-redis
]

SUPERSERVER_BROKER = os.environ.get('SUPERSERVER_TEST_BROKER', 'redis://127.0.0.1:6379/0')
_redis = urlsplit(SUPERSERVER_BROKER)

WEBSOCKET_URL = '/ws/'
WS4REDIS_CONNECTION = {'host': _redis.hostname,
                       'port': int(os.environ.get('WS4REDIS_TEST_PORT') or _redis.port),
                       'db': int(_redis.path.strip('/') or 0), 'password': None}
WS4REDIS_EXPIRE = 60
WS4REDIS_PREFIX = os.environ.get('WS4REDIS_TEST_PREFIX') or None
WS4REDIS_HEARTBEAT = '--heartbeat--'
WS4REDIS_ALLOWED_CHANNELS = 'tests.ws4redis_project.hooks.allowed_channels'
WS4REDIS_PROCESS_REQUEST = 'tests.ws4redis_project.hooks.process_request'

LOGGING = {
    'version': 1,
    'disable_existing_loggers': False,
    'handlers': {'console': {'class': 'logging.StreamHandler'}},
    'loggers': {'django.request': {'handlers': ['console'], 'level': 'WARNING'},
                'superserver.ws4redis': {'handlers': ['console'], 'level': 'INFO'}},
}

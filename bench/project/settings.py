"""The benchmark project: what ``startproject`` makes, with DEBUG off, plus superserver
(``extensions``) and a Channels layer, so every server measured serves the same Django.

Each server logs as it does by default (superserver and uvicorn one line per request);
the harness sends their output to bench/results/logs/.
"""
import os

SECRET_KEY = 'benchmarks-only'
DEBUG = False
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']

INSTALLED_APPS = [
    'django.contrib.admin',
    'django.contrib.auth',
    'django.contrib.contenttypes',
    'django.contrib.sessions',
    'django.contrib.messages',
    'django.contrib.staticfiles',
    'extensions',
]

MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.contrib.sessions.middleware.SessionMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
    'django.contrib.auth.middleware.AuthenticationMiddleware',
    'django.contrib.messages.middleware.MessageMiddleware',
    'django.middleware.clickjacking.XFrameOptionsMiddleware',
]

ROOT_URLCONF = 'bench.project.urls'

TEMPLATES = [
    {
        'BACKEND': 'django.template.backends.django.DjangoTemplates',
        'DIRS': [],
        'APP_DIRS': True,
        'OPTIONS': {
            'context_processors': [
                'django.template.context_processors.request',
                'django.contrib.auth.context_processors.auth',
                'django.contrib.messages.context_processors.messages',
            ],
        },
    },
]

WSGI_APPLICATION = 'bench.project.wsgi.application'

# No view queries it; in memory, so that a run leaves no file behind (and nothing to
# migrate: superserver's start warns of unapplied migrations, harmlessly).
DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.sqlite3',
        'NAME': ':memory:',
    }
}

# Channels' groups, in this process (uvicorn serves with one): the peer of superserver's
# memory:// broker.
CHANNEL_LAYERS = {'default': {'BACKEND': 'channels.layers.InMemoryChannelLayer'}}

LANGUAGE_CODE = 'en-us'
TIME_ZONE = 'UTC'
USE_I18N = True
USE_TZ = True
STATIC_URL = 'static/'
DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'

# python -m bench.fanout runs two servers on one Redis (BENCH_BROKER); the other
# scenarios keep the in-process broker.
SUPERSERVER_BROKER = os.environ.get('BENCH_BROKER', 'memory://')
SUPERSERVER_CHANNEL_HISTORY = {'recover': {'size': 10000}}
SUPERSERVER_PRESENCE_TIMEOUT = float(os.environ.get('BENCH_PRESENCE_TIMEOUT', 15))

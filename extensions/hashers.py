"""Password hashing in gevent's native threads, for every hasher in PASSWORD_HASHERS.

Password hashers are slow on purpose: Django's default, PBKDF2 with a million
iterations, takes about half a second, and a greenlet that hashes (a login,
``set_password``, ``check_password``) holds every other request and websocket of its
process for that long. ``hashlib.pbkdf2_hmac`` and ``hashlib.scrypt``, argon2-cffi and
bcrypt release the GIL while they hash, so in one of gevent's native threads
(``extensions.offload``) a hash costs the event loop nothing.

Why a subclass of each configured hasher: ``PASSWORD_HASHERS`` is Django's documented
way to choose hasher classes, and a subclass its documented way to change one. Django
builds its hashers from that setting and calls their ``encode``, ``verify`` and
``harden_runtime`` for every hash, whichever function of ``django.contrib.auth`` asks;
wrapping anything else (``hashlib``, ``make_password``, whose name other modules import)
would patch modules that are not ours, or miss callers. ``offload_password_hashers``,
called by superserver's ``AppConfig.ready``, therefore replaces each entry of the
setting, Django's hashers and a project's own alike, by a subclass that mixes in
``OffloadedHashing``. The subclass keeps its ``algorithm``, so stored hashes read and
write as before, and ``isinstance`` checks still hold. A process that gevent did not
patch (a plain ``manage.py`` command, runserver) serves no event loop: there the
hashers hash in the calling thread, as Django's do.
"""
from django.conf import settings
from django.utils.module_loading import import_string
from gevent import monkey

from .offload import offload

__all__ = ['OffloadedHashing', 'offload_password_hashers']

#: Whether this native thread is one of gevent's, hashing already (``verify`` calls
#: ``encode``): a native thread-local, since gevent's threading.local is per greenlet.
_in_pool_thread = monkey.get_original('threading', 'local')()

#: Each hasher class offloaded so far, and the name of its subclass in this module.
_subclasses = {}


class OffloadedHashing:
    """Mixin for a password hasher: its work runs off the event loop."""

    def encode(self, password, salt, *args, **kwargs):
        return _off_the_loop(super().encode, password, salt, *args, **kwargs)

    def verify(self, password, encoded):
        return _off_the_loop(super().verify, password, encoded)

    def harden_runtime(self, password, encoded):
        return _off_the_loop(super().harden_runtime, password, encoded)


def _off_the_loop(method, *args, **kwargs):
    if getattr(_in_pool_thread, 'hashing', False) or not monkey.is_module_patched('socket'):
        return method(*args, **kwargs)
    return offload(_hash, method, args, kwargs)


def _hash(method, args, kwargs):
    _in_pool_thread.hashing = True
    try:
        return method(*args, **kwargs)
    finally:
        _in_pool_thread.hashing = False


def offload_password_hashers():
    """Point each entry of ``settings.PASSWORD_HASHERS`` at an offloading subclass,
    made here and named in this module, of the hasher it names."""
    settings.PASSWORD_HASHERS = [_offloading(path) for path in settings.PASSWORD_HASHERS]


def _offloading(path):
    hasher = import_string(path)
    if issubclass(hasher, OffloadedHashing):
        return path
    if hasher not in _subclasses:
        name = 'Offloaded' + hasher.__name__
        if name in globals():   # another module's hasher of the same name
            name += str(len(_subclasses))
        globals()[name] = type(name, (OffloadedHashing, hasher),
                               {'__module__': __name__, '__doc__': hasher.__doc__})
        _subclasses[hasher] = name
    return '%s.%s' % (__name__, _subclasses[hasher])

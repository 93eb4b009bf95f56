"""What the serving process holds, for the soak tests (tests/test_soak.py): live Python
objects, greenlets, open file descriptors and resident memory, seen from inside.

A leak of connections shows in all four; objects and greenlets only show from inside,
hence a view. The request asking counts itself (its greenlet and socket), the same in
every sample. Garbage is collected first, so what is counted is held by something.
"""
import gc

import psutil
from django.http import JsonResponse
from greenlet import greenlet


def stats(request):
    gc.collect()
    process = psutil.Process()
    figures = {'fds': process.num_fds(), 'rss': process.memory_info().rss}
    objects = gc.get_objects()
    figures['objects'] = len(objects)
    figures['greenlets'] = sum(1 for thing in objects
                               if isinstance(thing, greenlet) and not thing.dead)
    del objects   # every object: gevent's monitor may keep this frame a while (seen: 10 s)
    return JsonResponse(figures)

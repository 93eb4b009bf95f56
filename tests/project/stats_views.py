"""What the serving process holds, for the soak tests (tests/test_soak.py): live
greenlets, open file descriptors and resident memory, seen from inside the process.

A leak of connections shows in all three; greenlets only show from inside, hence a view.
The request asking counts itself (its greenlet and socket), the same in every sample.
"""
import gc

import psutil
from django.http import JsonResponse
from greenlet import greenlet


def stats(request):
    gc.collect()   # what is left is held by something, not waiting for a collection
    process = psutil.Process()
    return JsonResponse({
        'greenlets': sum(1 for thing in gc.get_objects()
                         if isinstance(thing, greenlet) and not thing.dead),
        'fds': process.num_fds(),
        'rss': process.memory_info().rss,
    })

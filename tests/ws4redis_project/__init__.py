"""A project shaped like a typical django-websocket-redis one, served by superserver
(tests/test_ws4redis.py): ws4redis's settings, its context processor, a page with
jQuery and the unchanged ws4redis.js, and the two hooks."""

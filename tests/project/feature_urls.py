from django.urls import path

from . import feature_views

urlpatterns = [
    path('stream/sync/', feature_views.stream_sync),
    path('stream/async/', feature_views.stream_async),
    path('threads/', feature_views.threads),
    path('download/', feature_views.download),
    path('partials/', feature_views.partials),
    path('csp/', feature_views.csp_page),
]

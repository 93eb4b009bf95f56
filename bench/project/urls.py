from django.urls import path

from . import views

urlpatterns = [
    path('hello/', views.hello),
    path('ws/echo/', views.echo),
    path('ws/broadcast/', views.broadcast),
    path('ws/broadcast-pubsub/', views.broadcast_pubsub),
    path('ws/recover/', views.recover),
    path('publish-history/', views.publish_history),
    path('ws/present/', views.present),
    path('presence/', views.presence_count),
]

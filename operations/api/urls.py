from django.urls import path

from . import views

urlpatterns = [
    path("feedback", views.feedback, name="feedback"),
    path("feedback/<int:feedback_id>", views.feedback_detail, name="feedback-detail"),
    path("feedback/<int:feedback_id>/replies", views.feedback_follow_up, name="feedback-follow-up"),
    path("feedback/photos", views.feedback_photo, name="feedback-photo"),
    path("chat", views.chat, name="chat"),
    path("chat/messages", views.chat_messages, name="chat-messages"),
    path("chat/read", views.chat_read, name="chat-read"),
]

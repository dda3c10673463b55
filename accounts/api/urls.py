from django.urls import path

from . import views

urlpatterns = [
    path("auth/wechat-login", views.wechat_login, name="auth-wechat-login"),
    path("auth/refresh", views.token_refresh, name="auth-refresh"),
    path("auth/logout", views.logout, name="auth-logout"),
    path("me", views.me, name="me"),
    path("me/phone", views.phone_bind, name="me-phone"),
]

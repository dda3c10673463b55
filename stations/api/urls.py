from django.urls import path

from . import views

urlpatterns = [
    path("stations", views.station_list, name="station-list"),
    path("stations/map", views.station_map, name="station-map"),
    path("stations/recommend", views.station_recommend, name="station-recommend"),
    path("stations/partners", views.partner_station_list, name="partner-station-list"),
    path("stations/partners/<str:pk>", views.partner_station_detail, name="partner-station-detail"),
    path("stations/<str:pk>", views.station_detail, name="station-detail"),
    path("connectors/by-code/<str:code>", views.connector_by_code, name="connector-by-code"),
    path("connectors/<int:pk>", views.connector_detail, name="connector-detail"),
]

"""The staff fulfillment queue and the operations dashboard."""

from django.urls import path

from . import dashboard, paperwork, two_factor, views

app_name = "staff"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("queue/<slug:step>/", views.queue, name="step"),
    path("claim/", views.claim, name="claim"),
    path("batch/", views.batch, name="batch"),
    path("ship/", views.ship, name="ship"),
    path("copies/<int:pk>/", views.copy_detail, name="copy"),
    path("copies/<int:pk>/<slug:action>/", views.copy_action, name="copy-action"),
    path("print/", paperwork.print_sheet, name="print"),
    path("discs/<int:pk>/label.png", paperwork.disc_label, name="disc-label"),
    path("discs/<int:pk>/image/", paperwork.disc_image, name="disc-image"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("purge-holds/<int:pk>/<slug:action>/", dashboard.purge_hold_action, name="purge-hold"),
    path("two-factor/", two_factor.two_factor_page, name="two-factor"),
    path("two-factor/off/", two_factor.turn_off, name="two-factor-off"),
]

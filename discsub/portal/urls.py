"""The subscriber portal: library, next disc, disc history, settings, accounts.

Objects are named by their UUID ``public_id``, never by a sequential pk."""

from django.contrib.auth import views as auth_views
from django.urls import path

from discsub.portal.views import account, discs, library, next_disc, selection

urlpatterns = [
    path("", account.home, name="home"),
    # Accounts (sign in and out are in discsub/urls.py).
    path("account/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("account/reset/", account.PasswordResetView.as_view(), name="password_reset"),
    path("account/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "account/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("account/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    # Library.
    path("library/", library.library_page, name="library"),
    path("library/upload/", library.upload, name="upload"),
    path("library/albums/new/", library.create_album, name="create_album"),
    path("library/items/<uuid:public_id>/", library.item_page, name="item"),
    path("library/items/<uuid:public_id>/edit/", library.edit_item, name="edit_item"),
    path("library/items/<uuid:public_id>/move/", library.move_item, name="move_item"),
    path("library/items/selected/", selection.act_on_selection, name="act_on_selection"),
    path("library/items/<uuid:public_id>/trash/", selection.trash_item, name="trash_item"),
    path("library/items/<uuid:public_id>/restore/", selection.restore_item, name="restore_item"),
    path("library/items/<uuid:public_id>/delete/", selection.delete_item, name="delete_item"),
    path("library/items/<uuid:public_id>/thumbnail/<int:version>/", library.thumbnail, name="thumbnail"),
    # The next disc.
    path("next/", next_disc.next_disc_page, name="next_disc"),
    path("next/ship-now/", next_disc.ship_now, name="ship_now"),
    # Disc history.
    path("discs/", discs.disc_list, name="discs"),
    path("discs/<uuid:public_id>/", discs.disc_page, name="disc"),
    path("discs/<uuid:public_id>/manifest/", discs.manifest_page, name="manifest"),
    path("discs/<uuid:public_id>/manifest.json", discs.manifest_json, name="manifest_json"),
    path("discs/<uuid:public_id>/image.iso", discs.image, name="disc_image"),
    path("discs/<uuid:public_id>/copies/<uuid:copy_id>/report/", discs.report_problem, name="report_problem"),
    # Settings.
    path("settings/", account.settings_page, name="settings"),
    path("settings/plan/", account.change_plan, name="change_plan"),
    path("settings/address/", account.change_address, name="change_address"),
    path("settings/emails/", account.change_emails, name="change_emails"),
    path("settings/pause/", account.pause, name="pause"),
    path("settings/resume/", account.resume, name="resume"),
    path("settings/cancel/", account.cancel, name="cancel"),
]

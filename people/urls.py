from __future__ import annotations

from django.urls import path
from django.views.i18n import set_language

from people import audit, twofactor_views, views

urlpatterns = [
    path("users/", views.user_list, name="user-list"),
    path("users/add/", views.user_add, name="user-add"),
    path("users/<str:username>/", views.user_detail, name="user-detail"),
    path("users/<str:username>/active/", views.user_active, name="user-active"),
    path("users/<str:username>/superuser/", views.user_superuser, name="user-superuser"),
    path("users/<str:username>/password/", views.user_password, name="user-password"),
    path("users/<str:username>/unlock/", views.user_unlock, name="user-unlock"),
    path(
        "users/<str:username>/tokens/<str:key>/revoke/",
        views.user_token_revoke,
        name="user-token-revoke",
    ),
    path("users/<str:username>/groups/", views.user_groups, name="user-groups"),
    path(
        "users/<str:username>/two-factor/reset/",
        twofactor_views.user_two_factor_reset,
        name="user-two-factor-reset",
    ),
    path("groups/", views.group_list, name="group-list"),
    path("groups/add/", views.group_add, name="group-add"),
    path("groups/<int:pk>/", views.group_detail, name="group-detail"),
    path("groups/<int:pk>/rename/", views.group_rename, name="group-rename"),
    path("groups/<int:pk>/members/", views.group_members, name="group-members"),
    path("groups/<int:pk>/delete/", views.group_delete, name="group-delete"),
    path("groups/<int:pk>/two-factor/", twofactor_views.group_two_factor, name="group-two-factor"),
    path("me/", views.me, name="me"),
    path("me/password/", views.me_password, name="me-password"),
    path("me/tokens/", views.me_token_add, name="me-token-add"),
    path("me/tokens/<str:key>/revoke/", views.me_token_revoke, name="me-token-revoke"),
    # Only a cookie (django_language), read by LocaleMiddleware and the live sockets.
    path("me/language/", set_language, name="me-language"),
    path("me/two-factor/", twofactor_views.me_two_factor, name="me-two-factor"),
    path(
        "me/two-factor/confirm/",
        twofactor_views.me_two_factor_confirm,
        name="me-two-factor-confirm",
    ),
    path("me/two-factor/codes/", twofactor_views.me_two_factor_codes, name="me-two-factor-codes"),
    path("me/two-factor/off/", twofactor_views.me_two_factor_off, name="me-two-factor-off"),
    path("accounts/code/", twofactor_views.login_code, name="login-code"),
    path("audit/", audit.audit_list, name="audit"),
    path("audit/export.csv", audit.audit_export, name="audit-export"),
]

# ruff: noqa: E501 - one line per route keeps the table readable
"""The permission matrix: every URL pattern of the site (GET) and every operation of the API
schema, for anonymous visitors and each role, with the status each must get. A new page or
operation without an expectation here fails, and so does one that answers anybody it should
not: a view without a permission check cannot land unnoticed.

Identities: anon; applicant (owner of the organisation that every object belongs to);
stranger (an applicant of another organisation); reviewer (assigned to the application);
manager (call manager); operator; governance (governance officer).

HPCGATE_MATRIX_DUMP=1 prints what the site answers now, in this file's format.
"""

import json
import os

import pytest
from django.test import Client
from rest_framework.test import APIClient

from core.services import token_create
from tests.config.matrix import IDENTITIES, address, patterns, world

pytestmark = pytest.mark.django_db

DUMP = os.environ.get("HPCGATE_MATRIX_DUMP") == "1"

# route: statuses for (anon, applicant, stranger, reviewer, manager, operator, governance)
PAGES: dict[str, tuple[int, ...]] = {
    "": (200, 200, 200, 200, 200, 200, 200),
    "accounts/3rdparty/": (302, 200, 200, 200, 200, 200, 200),
    "accounts/3rdparty/login/cancelled/": (200, 200, 200, 200, 200, 200, 200),
    "accounts/3rdparty/login/error/": (401, 401, 401, 401, 401, 401, 401),
    "accounts/3rdparty/signup/": (302, 302, 302, 302, 302, 302, 302),
    "accounts/^confirm-email/(?P<key>[-:\\w]+)/$": (200, 200, 200, 200, 200, 200, 200),
    "accounts/^password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$": (200, 200, 200, 200, 200, 200, 200),
    "accounts/confirm-email/": (200, 200, 200, 200, 200, 200, 200),
    "accounts/email/": (302, 200, 200, 200, 200, 200, 200),
    "accounts/notifications/": (302, 200, 200, 200, 200, 200, 200),
    "admin/compliance/misusereport/": (302, 302, 302, 403, 403, 403, 200),
    "admin/compliance/misusereport/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/compliance/misusereport/<path:object_id>/change/": (302, 302, 302, 403, 403, 403, 302),
    "admin/compliance/misusereport/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/compliance/misusereport/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 302),
    "admin/compliance/misusereport/add/": (302, 302, 302, 403, 403, 403, 403),
    "api/v1/usage/imports/<int:pk>/": (404, 404, 404, 404, 404, 404, 404),
    "api/v1/clusters/<str:cluster>/pending-changes/": (401, 401, 401, 401, 401, 401, 401),
    "api/v1/exports/<int:pk>/applied/": (401, 401, 401, 401, 401, 401, 401),
    "favicon.ico": (301, 301, 301, 301, 301, 301, 301),
    "governance/footprint/": (302, 302, 302, 403, 200, 200, 200),
    "report/": (200, 200, 200, 200, 200, 200, 200),
    "report/case/": (200, 200, 200, 200, 200, 200, 200),
    "usage/": (302, 200, 200, 200, 200, 200, 200),
    "accounts/inactive/": (200, 200, 200, 200, 200, 200, 200),
    "accounts/login/": (200, 302, 302, 302, 302, 302, 302),
    "accounts/login/code/confirm/": (302, 302, 302, 302, 302, 302, 302),
    "accounts/logout/": (302, 200, 200, 200, 200, 200, 200),
    "accounts/oidc/^(?P<provider_id>[^/]+)/login/": (404, 404, 404, 404, 404, 404, 404),
    "accounts/oidc/^(?P<provider_id>[^/]+)/login/callback/": (404, 404, 404, 404, 404, 404, 404),
    "accounts/password/change/": (302, 200, 200, 200, 200, 200, 200),
    "accounts/password/reset/": (200, 200, 200, 200, 200, 200, 200),
    "accounts/password/reset/done/": (200, 200, 200, 200, 200, 200, 200),
    "accounts/password/reset/key/done/": (200, 200, 200, 200, 200, 200, 200),
    "accounts/password/set/": (302, 302, 302, 302, 302, 302, 302),
    "accounts/reauthenticate/": (302, 200, 200, 200, 200, 200, 200),
    "accounts/reauthenticate/code/": (302, 200, 200, 200, 200, 200, 200),
    "accounts/reauthenticate/code/confirm/": (302, 302, 302, 302, 302, 302, 302),
    "accounts/signup/": (200, 302, 302, 302, 302, 302, 302),
    "accounts/social/connections/": (301, 301, 301, 301, 301, 301, 301),
    "accounts/social/login/cancelled/": (301, 301, 301, 301, 301, 301, 301),
    "accounts/social/login/error/": (301, 301, 301, 301, 301, 301, 301),
    "accounts/social/signup/": (301, 301, 301, 301, 301, 301, 301),
    "accounts/tokens/": (302, 200, 200, 200, 200, 200, 200),
    "accounts/tokens/<int:pk>/revoke/": (302, 405, 405, 405, 405, 405, 405),
    "admin/": (302, 302, 302, 200, 200, 200, 200),
    "admin/(?P<url>.*)$": (302, 302, 302, 404, 404, 404, 404),
    "admin/^(?P<app_label>auth|sites|django_celery_beat|account|socialaccount|organisations|systems|allocations|usage|compliance|vetting)/$": (302, 302, 302, 200, 200, 404, 200),
    "admin/account/emailaddress/": (302, 302, 302, 403, 403, 403, 403),
    "admin/account/emailaddress/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/account/emailaddress/<path:object_id>/change/": (302, 302, 302, 403, 403, 403, 403),
    "admin/account/emailaddress/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/account/emailaddress/<path:object_id>/history/": (302, 302, 302, 403, 403, 403, 403),
    "admin/account/emailaddress/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/allocations/allocation/": (302, 302, 302, 403, 200, 200, 200),
    "admin/allocations/allocation/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/allocations/allocation/<path:object_id>/change/": (302, 302, 302, 403, 200, 200, 200),
    "admin/allocations/allocation/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/allocations/allocation/<path:object_id>/history/": (302, 302, 302, 403, 200, 200, 200),
    "admin/allocations/allocation/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/allocations/changerequest/": (302, 302, 302, 403, 200, 200, 403),
    "admin/allocations/changerequest/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/allocations/changerequest/<path:object_id>/change/": (302, 302, 302, 403, 200, 200, 403),
    "admin/allocations/changerequest/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/allocations/changerequest/<path:object_id>/history/": (302, 302, 302, 403, 200, 200, 403),
    "admin/allocations/changerequest/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/allocations/schedulerexport/": (302, 302, 302, 403, 403, 200, 403),
    "admin/allocations/schedulerexport/<int:pk>/download/": (302, 302, 302, 403, 403, 200, 403),
    "admin/allocations/schedulerexport/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/allocations/schedulerexport/<path:object_id>/change/": (302, 302, 302, 403, 403, 200, 403),
    "admin/allocations/schedulerexport/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/allocations/schedulerexport/<path:object_id>/history/": (302, 302, 302, 403, 403, 200, 403),
    "admin/allocations/schedulerexport/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/allocations/schedulerexport/produce/": (302, 302, 302, 403, 403, 200, 403),
    "admin/auth/group/": (302, 302, 302, 403, 403, 403, 403),
    "admin/auth/group/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/auth/group/<path:object_id>/change/": (302, 302, 302, 403, 403, 403, 403),
    "admin/auth/group/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/auth/group/<path:object_id>/history/": (302, 302, 302, 403, 403, 403, 403),
    "admin/auth/group/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/auth/user/": (302, 302, 302, 403, 403, 403, 403),
    "admin/auth/user/<id>/password/": (302, 302, 302, 403, 403, 403, 403),
    "admin/auth/user/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/auth/user/<path:object_id>/change/": (302, 302, 302, 403, 403, 403, 403),
    "admin/auth/user/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/auth/user/<path:object_id>/history/": (302, 302, 302, 403, 403, 403, 403),
    "admin/auth/user/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/autocomplete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/compliance/alert/": (302, 302, 302, 403, 200, 200, 200),
    "admin/compliance/alert/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/compliance/alert/<path:object_id>/change/": (302, 302, 302, 403, 200, 200, 200),
    "admin/compliance/alert/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/compliance/alert/<path:object_id>/history/": (302, 302, 302, 403, 200, 200, 200),
    "admin/compliance/alert/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/compliance/largerunentry/": (302, 302, 302, 403, 200, 403, 200),
    "admin/compliance/largerunentry/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/compliance/largerunentry/<path:object_id>/change/": (302, 302, 302, 403, 200, 403, 200),
    "admin/compliance/largerunentry/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/compliance/largerunentry/<path:object_id>/history/": (302, 302, 302, 403, 200, 403, 200),
    "admin/compliance/largerunentry/^([^/]+)/history/([^/]+)/$": (302, 302, 302, 404, 404, 404, 404),
    "admin/compliance/largerunentry/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/clockedschedule/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/clockedschedule/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/django_celery_beat/clockedschedule/<path:object_id>/change/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/clockedschedule/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/clockedschedule/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 302),
    "admin/django_celery_beat/clockedschedule/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/crontabschedule/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/crontabschedule/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/django_celery_beat/crontabschedule/<path:object_id>/change/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/crontabschedule/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/crontabschedule/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 302),
    "admin/django_celery_beat/crontabschedule/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/intervalschedule/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/intervalschedule/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/django_celery_beat/intervalschedule/<path:object_id>/change/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/intervalschedule/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/intervalschedule/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 302),
    "admin/django_celery_beat/intervalschedule/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/periodictask/": (302, 302, 302, 403, 403, 200, 403),
    "admin/django_celery_beat/periodictask/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/django_celery_beat/periodictask/<path:object_id>/change/": (302, 302, 302, 403, 403, 302, 403),
    "admin/django_celery_beat/periodictask/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/periodictask/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 302),
    "admin/django_celery_beat/periodictask/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/solarschedule/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/solarschedule/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/django_celery_beat/solarschedule/<path:object_id>/change/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/solarschedule/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/django_celery_beat/solarschedule/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 302),
    "admin/django_celery_beat/solarschedule/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/jsi18n/": (302, 302, 302, 200, 200, 200, 200),
    "admin/login/": (200, 200, 200, 302, 302, 302, 302),
    "admin/logout/": (302, 302, 302, 405, 405, 405, 405),
    "admin/organisations/country/": (302, 302, 302, 403, 200, 403, 403),
    "admin/organisations/country/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/organisations/country/<path:object_id>/change/": (302, 302, 302, 403, 200, 403, 403),
    "admin/organisations/country/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/organisations/country/<path:object_id>/history/": (302, 302, 302, 403, 200, 403, 403),
    "admin/organisations/country/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/organisations/invitation/": (302, 302, 302, 403, 200, 403, 403),
    "admin/organisations/invitation/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/organisations/invitation/<path:object_id>/change/": (302, 302, 302, 403, 200, 403, 403),
    "admin/organisations/invitation/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/organisations/invitation/<path:object_id>/history/": (302, 302, 302, 403, 200, 403, 403),
    "admin/organisations/invitation/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/organisations/organisation/": (302, 302, 302, 403, 200, 200, 200),
    "admin/organisations/organisation/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/organisations/organisation/<path:object_id>/change/": (302, 302, 302, 403, 200, 200, 200),
    "admin/organisations/organisation/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/organisations/organisation/<path:object_id>/history/": (302, 302, 302, 403, 200, 200, 200),
    "admin/organisations/organisation/^([^/]+)/history/([^/]+)/$": (302, 302, 302, 404, 404, 404, 404),
    "admin/organisations/organisation/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/password_change/": (302, 302, 302, 200, 200, 200, 200),
    "admin/password_change/done/": (302, 302, 302, 200, 200, 200, 200),
    "admin/r/<path:content_type_id>/<path:object_id>/": (302, 302, 302, 404, 404, 404, 404),
    "admin/sites/site/": (302, 302, 302, 403, 403, 403, 403),
    "admin/sites/site/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/sites/site/<path:object_id>/change/": (302, 302, 302, 403, 403, 403, 403),
    "admin/sites/site/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/sites/site/<path:object_id>/history/": (302, 302, 302, 403, 403, 403, 403),
    "admin/sites/site/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/socialaccount/socialaccount/": (302, 302, 302, 403, 403, 403, 403),
    "admin/socialaccount/socialaccount/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/socialaccount/socialaccount/<path:object_id>/change/": (302, 302, 302, 403, 403, 403, 403),
    "admin/socialaccount/socialaccount/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/socialaccount/socialaccount/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 302),
    "admin/socialaccount/socialaccount/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/socialaccount/socialapp/": (302, 302, 302, 403, 403, 403, 403),
    "admin/socialaccount/socialapp/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/socialaccount/socialapp/<path:object_id>/change/": (302, 302, 302, 403, 403, 403, 403),
    "admin/socialaccount/socialapp/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/socialaccount/socialapp/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 302),
    "admin/socialaccount/socialapp/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/socialaccount/socialtoken/": (302, 302, 302, 403, 403, 403, 403),
    "admin/socialaccount/socialtoken/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/socialaccount/socialtoken/<path:object_id>/change/": (302, 302, 302, 403, 403, 403, 403),
    "admin/socialaccount/socialtoken/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/socialaccount/socialtoken/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 302),
    "admin/socialaccount/socialtoken/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/systems/accessmode/": (302, 302, 302, 200, 200, 200, 403),
    "admin/systems/accessmode/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/systems/accessmode/<path:object_id>/change/": (302, 302, 302, 200, 200, 200, 403),
    "admin/systems/accessmode/<path:object_id>/delete/": (302, 302, 302, 403, 200, 403, 403),
    "admin/systems/accessmode/<path:object_id>/history/": (302, 302, 302, 200, 200, 200, 403),
    "admin/systems/accessmode/add/": (302, 302, 302, 403, 200, 403, 403),
    "admin/systems/call/": (302, 302, 302, 200, 200, 200, 200),
    "admin/systems/call/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/systems/call/<path:object_id>/change/": (302, 302, 302, 200, 200, 200, 200),
    "admin/systems/call/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/systems/call/<path:object_id>/history/": (302, 302, 302, 200, 200, 200, 200),
    "admin/systems/call/^([^/]+)/history/([^/]+)/$": (302, 302, 302, 404, 404, 404, 404),
    "admin/systems/call/add/": (302, 302, 302, 403, 200, 403, 403),
    "admin/systems/cluster/": (302, 302, 302, 403, 200, 200, 200),
    "admin/systems/cluster/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/systems/cluster/<path:object_id>/change/": (302, 302, 302, 403, 200, 200, 200),
    "admin/systems/cluster/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/systems/cluster/<path:object_id>/history/": (302, 302, 302, 403, 200, 200, 200),
    "admin/systems/cluster/add/": (302, 302, 302, 403, 403, 200, 403),
    "admin/systems/partition/": (302, 302, 302, 200, 200, 200, 200),
    "admin/systems/partition/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/systems/partition/<path:object_id>/change/": (302, 302, 302, 200, 200, 200, 200),
    "admin/systems/partition/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/systems/partition/<path:object_id>/history/": (302, 302, 302, 200, 200, 200, 200),
    "admin/systems/partition/^([^/]+)/history/([^/]+)/$": (302, 302, 302, 404, 404, 404, 404),
    "admin/systems/partition/add/": (302, 302, 302, 403, 403, 200, 403),
    "admin/systems/site/": (302, 302, 302, 403, 200, 200, 200),
    "admin/systems/site/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/systems/site/<path:object_id>/change/": (302, 302, 302, 403, 200, 200, 200),
    "admin/systems/site/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/systems/site/<path:object_id>/history/": (302, 302, 302, 403, 200, 200, 200),
    "admin/systems/site/^([^/]+)/history/([^/]+)/$": (302, 302, 302, 404, 404, 404, 404),
    "admin/systems/site/add/": (302, 302, 302, 403, 403, 200, 403),
    "admin/systems/thresholdpolicy/": (302, 302, 302, 403, 200, 200, 200),
    "admin/systems/thresholdpolicy/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/systems/thresholdpolicy/<path:object_id>/change/": (302, 302, 302, 403, 200, 200, 200),
    "admin/systems/thresholdpolicy/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/systems/thresholdpolicy/<path:object_id>/history/": (302, 302, 302, 403, 200, 200, 200),
    "admin/systems/thresholdpolicy/^([^/]+)/history/([^/]+)/$": (302, 302, 302, 404, 404, 404, 404),
    "admin/systems/thresholdpolicy/add/": (302, 302, 302, 403, 403, 403, 200),
    "admin/usage/sitetoken/": (302, 302, 302, 403, 403, 200, 403),
    "admin/usage/sitetoken/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/usage/sitetoken/<path:object_id>/change/": (302, 302, 302, 403, 403, 302, 403),
    "admin/usage/sitetoken/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/usage/sitetoken/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 302),
    "admin/usage/sitetoken/add/": (302, 302, 302, 403, 403, 200, 403),
    "admin/usage/usageimport/": (302, 302, 302, 403, 200, 200, 403),
    "admin/usage/usageimport/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/usage/usageimport/<path:object_id>/change/": (302, 302, 302, 403, 302, 302, 403),
    "admin/usage/usageimport/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/usage/usageimport/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 302),
    "admin/usage/usageimport/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/usage/usagerecord/": (302, 302, 302, 403, 200, 200, 200),
    "admin/usage/usagerecord/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/usage/usagerecord/<path:object_id>/change/": (302, 302, 302, 403, 200, 200, 200),
    "admin/usage/usagerecord/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/usage/usagerecord/<path:object_id>/history/": (302, 302, 302, 403, 200, 200, 200),
    "admin/usage/usagerecord/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/vetting/application/": (302, 302, 302, 403, 200, 403, 200),
    "admin/vetting/application/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/vetting/application/<path:object_id>/change/": (302, 302, 302, 403, 200, 403, 200),
    "admin/vetting/application/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/vetting/application/<path:object_id>/history/": (302, 302, 302, 403, 200, 403, 200),
    "admin/vetting/application/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/vetting/decision/": (302, 302, 302, 403, 200, 403, 403),
    "admin/vetting/decision/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/vetting/decision/<path:object_id>/change/": (302, 302, 302, 403, 302, 403, 403),
    "admin/vetting/decision/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/vetting/decision/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 302),
    "admin/vetting/decision/add/": (302, 302, 302, 403, 403, 403, 403),
    "admin/vetting/ranking/": (302, 302, 302, 403, 200, 403, 403),
    "admin/vetting/ranking/<int:mode_id>/": (302, 302, 302, 403, 200, 403, 403),
    "admin/vetting/reviewassignment/": (302, 302, 302, 200, 200, 403, 403),
    "admin/vetting/reviewassignment/<int:pk>/annex/": (302, 302, 302, 403, 200, 404, 404),
    "admin/vetting/reviewassignment/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/vetting/reviewassignment/<path:object_id>/change/": (302, 302, 302, 200, 200, 404, 404),
    "admin/vetting/reviewassignment/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/vetting/reviewassignment/<path:object_id>/history/": (302, 302, 302, 200, 200, 302, 302),
    "admin/vetting/reviewassignment/add/": (302, 302, 302, 403, 200, 403, 403),
    "admin/vetting/reviewerprofile/": (302, 302, 302, 403, 200, 403, 403),
    "admin/vetting/reviewerprofile/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/vetting/reviewerprofile/<path:object_id>/change/": (302, 302, 302, 403, 302, 403, 403),
    "admin/vetting/reviewerprofile/<path:object_id>/delete/": (302, 302, 302, 403, 302, 403, 403),
    "admin/vetting/reviewerprofile/<path:object_id>/history/": (302, 302, 302, 302, 302, 302, 302),
    "admin/vetting/reviewerprofile/add/": (302, 302, 302, 403, 200, 403, 403),
    "admin/vetting/rubric/": (302, 302, 302, 200, 200, 403, 403),
    "admin/vetting/rubric/<path:object_id>/": (302, 302, 302, 302, 302, 302, 302),
    "admin/vetting/rubric/<path:object_id>/change/": (302, 302, 302, 200, 200, 403, 403),
    "admin/vetting/rubric/<path:object_id>/delete/": (302, 302, 302, 403, 403, 403, 403),
    "admin/vetting/rubric/<path:object_id>/history/": (302, 302, 302, 200, 200, 403, 403),
    "admin/vetting/rubric/add/": (302, 302, 302, 403, 200, 403, 403),
    "allocations/": (302, 200, 200, 200, 200, 200, 200),
    "allocations/<int:pk>/": (302, 200, 404, 404, 404, 404, 404),
    "allocations/<int:pk>/changes/": (302, 302, 302, 302, 302, 302, 302),
    "allocations/<int:pk>/users/": (302, 302, 302, 302, 302, 302, 302),
    "allocations/<int:pk>/users/remove/": (302, 405, 405, 405, 405, 405, 405),
    "api/docs/": (200, 200, 200, 200, 200, 200, 200),
    "api/schema/": (200, 200, 200, 200, 200, 200, 200),
    "api/v1/": (401, 200, 200, 200, 200, 200, 200),
    "api/v1/<drf_format_suffix:format>": (401, 200, 200, 200, 200, 200, 200),
    "api/v1/^alerts/$": (401, 403, 403, 403, 200, 200, 200),
    "api/v1/^alerts/(?P<pk>[^/.]+)/$": (401, 403, 403, 403, 200, 200, 200),
    "api/v1/^alerts/(?P<pk>[^/.]+)/acknowledge/$": (401, 403, 403, 403, 405, 405, 405),
    "api/v1/^allocations/$": (401, 200, 200, 200, 200, 200, 200),
    "api/v1/^allocations/(?P<pk>[^/.]+)/$": (401, 200, 404, 404, 200, 200, 200),
    "api/v1/^applications/$": (401, 200, 200, 200, 200, 200, 200),
    "api/v1/^applications/(?P<pk>[^/.]+)/$": (401, 200, 404, 404, 404, 404, 404),
    "api/v1/^applications/(?P<pk>[^/.]+)/submit/$": (401, 405, 405, 405, 405, 405, 405),
    "api/v1/^applications/(?P<pk>[^/.]+)/withdraw/$": (401, 405, 405, 405, 405, 405, 405),
    "api/v1/^auth/tokens/$": (401, 200, 200, 200, 200, 200, 200),
    "api/v1/^auth/tokens/(?P<pk>[^/.]+)/$": (401, 200, 404, 404, 404, 404, 404),
    "api/v1/^calls/$": (200, 200, 200, 200, 200, 200, 200),
    "api/v1/^calls/(?P<slug>[^/.]+)/$": (200, 200, 200, 200, 200, 200, 200),
    "api/v1/^calls/(?P<slug>[^/.]+)\\.(?P<format>[a-z0-9]+)/?$": (200, 200, 200, 200, 200, 200, 200),
    "api/v1/^calls\\.(?P<format>[a-z0-9]+)/?$": (200, 200, 200, 200, 200, 200, 200),
    "api/v1/^change-requests/$": (401, 200, 200, 200, 200, 200, 200),
    "api/v1/^change-requests/(?P<pk>[^/.]+)/$": (401, 200, 404, 404, 200, 200, 404),
    "api/v1/^change-requests/(?P<pk>[^/.]+)/approve/$": (401, 405, 405, 405, 405, 405, 405),
    "api/v1/^change-requests/(?P<pk>[^/.]+)/deny/$": (401, 405, 405, 405, 405, 405, 405),
    "api/v1/^change-requests/extensions/$": (401, 405, 405, 405, 405, 405, 405),
    "api/v1/^change-requests/top-ups/$": (401, 405, 405, 405, 405, 405, 405),
    "api/v1/^decisions/$": (401, 403, 403, 403, 200, 403, 403),
    "api/v1/^decisions/(?P<pk>[^/.]+)/$": (401, 403, 403, 403, 404, 403, 403),
    "api/v1/^partitions/$": (200, 200, 200, 200, 200, 200, 200),
    "api/v1/^partitions/(?P<pk>[^/.]+)/$": (200, 200, 200, 200, 200, 200, 200),
    "api/v1/^partitions/(?P<pk>[^/.]+)\\.(?P<format>[a-z0-9]+)/?$": (200, 200, 200, 200, 200, 200, 200),
    "api/v1/^partitions\\.(?P<format>[a-z0-9]+)/?$": (200, 200, 200, 200, 200, 200, 200),
    "api/v1/^register/$": (401, 403, 403, 403, 200, 403, 200),
    "api/v1/^register/(?P<pk>[^/.]+)/$": (401, 403, 403, 403, 200, 403, 200),
    "api/v1/^review-assignments/$": (401, 403, 403, 200, 200, 403, 403),
    "api/v1/^review-assignments/(?P<pk>[^/.]+)/$": (401, 403, 403, 200, 200, 403, 403),
    "api/v1/^review-assignments/(?P<pk>[^/.]+)/conflict/$": (401, 403, 403, 405, 405, 403, 403),
    "api/v1/^review-assignments/(?P<pk>[^/.]+)/no-conflict/$": (401, 403, 403, 405, 405, 403, 403),
    "api/v1/^review-assignments/(?P<pk>[^/.]+)/review/$": (401, 403, 403, 404, 404, 403, 403),
    "api/v1/^review-assignments/(?P<pk>[^/.]+)/review/submit/$": (401, 403, 403, 405, 405, 403, 403),
    "api/v1/^review-assignments/auto/$": (401, 403, 403, 405, 405, 403, 403),
    "api/v1/allocations/<int:pk>/users/": (401, 200, 404, 404, 200, 200, 200),
    "api/v1/allocations/<int:pk>/users/<str:username>/": (401, 405, 405, 405, 405, 405, 405),
    "api/v1/auth/token/": (405, 405, 405, 405, 405, 405, 405),
    "api/v1/exports/": (401, 403, 403, 403, 403, 200, 403),
    "api/v1/exports/<int:pk>/": (401, 403, 403, 403, 403, 200, 403),
    "api/v1/ranking/<int:mode_id>/": (401, 403, 403, 403, 200, 403, 403),
    "api/v1/usage/allocations/<int:pk>/": (401, 200, 404, 404, 200, 200, 200),
    "api/v1/usage/allocations/<int:pk>/annex-xi/": (401, 200, 404, 404, 200, 200, 200),
    "api/v1/usage/allocations/<int:pk>/jobs/": (401, 200, 404, 404, 200, 200, 200),
    "api/v1/usage/allocations/<int:pk>/series/": (401, 200, 404, 404, 200, 200, 200),
    "api/v1/usage/imports/": (401, 403, 403, 403, 403, 405, 403),
    "api/v1/usage/models/": (401, 200, 404, 404, 200, 200, 200),
    "api/v1/usage/models/annex-xi/": (401, 200, 404, 404, 200, 200, 200),
    "api/v1/usage/models/jobs/": (401, 200, 404, 404, 200, 200, 200),
    "api/v1/usage/models/series/": (401, 200, 404, 404, 200, 200, 200),
    "applications/": (302, 200, 200, 200, 200, 200, 200),
    "applications/<int:pk>/": (302, 200, 404, 404, 404, 404, 404),
    "applications/<int:pk>/annex/": (302, 200, 404, 404, 200, 404, 200),
    "applications/<int:pk>/edit/": (302, 302, 404, 404, 404, 404, 404),
    "applications/<int:pk>/withdraw/": (302, 200, 404, 404, 404, 404, 404),
    "apply/": (302, 200, 200, 302, 302, 302, 302),
    "governance/annual-report/": (302, 302, 302, 403, 200, 403, 200),
    "governance/register.csv": (302, 302, 302, 403, 200, 403, 200),
    "healthz": (200, 200, 200, 200, 200, 200, 200),
    "invitations/<str:token>/": (302, 200, 200, 200, 200, 200, 200),
    "livez": (200, 200, 200, 200, 200, 200, 200),
    "organisations/": (302, 302, 302, 200, 200, 200, 200),
    "organisations/<int:pk>/": (302, 200, 404, 404, 404, 404, 404),
    "organisations/<int:pk>/edit/": (302, 200, 404, 404, 404, 404, 404),
    "organisations/<int:pk>/invite/": (302, 405, 405, 405, 405, 405, 405),
    "organisations/new/": (302, 200, 200, 200, 200, 200, 200),
    "usage/allocations/<int:pk>/": (302, 200, 404, 404, 200, 200, 200),
    "usage/allocations/<int:pk>/annex-xi.json": (302, 200, 404, 404, 200, 200, 200),
    "usage/allocations/<int:pk>/annex-xi/": (302, 200, 404, 404, 200, 200, 200),
    "usage/models/<path:model_name>/": (302, 200, 404, 404, 200, 200, 200),
    "usage/models/<path:model_name>/annex-xi.json": (302, 200, 404, 404, 200, 200, 200),
    "usage/models/<path:model_name>/annex-xi/": (302, 200, 404, 404, 200, 200, 200),
}  # fmt: skip

# "METHOD /path": statuses for the same identities; bodies are empty JSON objects, so an
# allowed write answers 400 (or 409) for its missing input where a refused one answers 401,
# 403 or 404.
OPERATIONS: dict[str, tuple[int, ...]] = {
    "DELETE /api/v1/allocations/{id}/users/{username}/": (401, 204, 404, 404, 403, 403, 403),
    "DELETE /api/v1/auth/tokens/{id}/": (401, 204, 404, 404, 404, 404, 404),
    "GET /api/v1/alerts/": (401, 403, 403, 403, 200, 200, 200),
    "GET /api/v1/alerts/{id}/": (401, 403, 403, 403, 200, 200, 200),
    "GET /api/v1/allocations/": (401, 200, 200, 200, 200, 200, 200),
    "GET /api/v1/allocations/{id}/": (401, 200, 404, 404, 200, 200, 200),
    "GET /api/v1/allocations/{id}/users/": (401, 200, 404, 404, 200, 200, 200),
    "GET /api/v1/applications/": (401, 200, 200, 200, 200, 200, 200),
    "GET /api/v1/applications/{id}/": (401, 200, 404, 404, 404, 404, 404),
    "GET /api/v1/auth/tokens/": (401, 200, 200, 200, 200, 200, 200),
    "GET /api/v1/auth/tokens/{id}/": (401, 200, 404, 404, 404, 404, 404),
    "GET /api/v1/calls/": (200, 200, 200, 200, 200, 200, 200),
    "GET /api/v1/calls/{slug}/": (200, 200, 200, 200, 200, 200, 200),
    "GET /api/v1/change-requests/": (401, 200, 200, 200, 200, 200, 200),
    "GET /api/v1/change-requests/{id}/": (401, 200, 404, 404, 200, 200, 404),
    "GET /api/v1/decisions/": (401, 403, 403, 403, 200, 403, 403),
    "GET /api/v1/decisions/{id}/": (401, 403, 403, 403, 404, 403, 403),
    "GET /api/v1/exports/": (401, 403, 403, 403, 403, 200, 403),
    "GET /api/v1/exports/{id}/": (401, 403, 403, 403, 403, 200, 403),
    "GET /api/v1/partitions/": (200, 200, 200, 200, 200, 200, 200),
    "GET /api/v1/partitions/{id}/": (200, 200, 200, 200, 200, 200, 200),
    "GET /api/v1/ranking/{mode_id}/": (401, 403, 403, 403, 200, 403, 403),
    "GET /api/v1/register/": (401, 403, 403, 403, 200, 403, 200),
    "GET /api/v1/register/{id}/": (401, 403, 403, 403, 200, 403, 200),
    "GET /api/v1/review-assignments/": (401, 403, 403, 200, 200, 403, 403),
    "GET /api/v1/review-assignments/{id}/": (401, 403, 403, 200, 200, 403, 403),
    "GET /api/v1/review-assignments/{id}/review/": (401, 403, 403, 404, 404, 403, 403),
    "GET /api/v1/usage/allocations/{id}/": (401, 200, 404, 404, 200, 200, 200),
    "GET /api/v1/usage/allocations/{id}/annex-xi/": (401, 200, 404, 404, 200, 200, 200),
    "GET /api/v1/usage/allocations/{id}/jobs/": (401, 200, 404, 404, 200, 200, 200),
    "GET /api/v1/usage/allocations/{id}/series/": (401, 200, 404, 404, 200, 200, 200),
    "GET /api/v1/usage/models/": (401, 200, 404, 404, 200, 200, 200),
    "GET /api/v1/usage/models/annex-xi/": (401, 200, 404, 404, 200, 200, 200),
    "GET /api/v1/usage/models/jobs/": (401, 200, 404, 404, 200, 200, 200),
    "GET /api/v1/usage/models/series/": (401, 200, 404, 404, 200, 200, 200),
    "PATCH /api/v1/applications/{id}/": (401, 409, 404, 404, 404, 404, 404),
    "POST /api/v1/alerts/{id}/acknowledge/": (401, 403, 403, 403, 200, 409, 409),
    "POST /api/v1/allocations/{id}/users/": (401, 400, 404, 404, 403, 403, 403),
    "POST /api/v1/applications/": (401, 400, 400, 400, 400, 400, 400),
    "POST /api/v1/applications/{id}/submit/": (401, 409, 404, 404, 404, 404, 404),
    "POST /api/v1/applications/{id}/withdraw/": (401, 200, 404, 404, 404, 404, 404),
    "POST /api/v1/auth/token/": (400, 400, 400, 400, 400, 400, 400),
    "POST /api/v1/auth/tokens/": (401, 400, 400, 400, 400, 400, 400),
    "POST /api/v1/change-requests/extensions/": (401, 400, 400, 400, 400, 400, 400),
    "POST /api/v1/change-requests/top-ups/": (401, 400, 400, 400, 400, 400, 400),
    "POST /api/v1/change-requests/{id}/approve/": (401, 403, 403, 403, 200, 403, 403),
    "POST /api/v1/change-requests/{id}/deny/": (401, 403, 403, 403, 400, 403, 403),
    "POST /api/v1/decisions/": (401, 403, 403, 403, 400, 403, 403),
    "POST /api/v1/exports/": (401, 403, 403, 403, 403, 400, 403),
    "POST /api/v1/review-assignments/": (401, 403, 403, 403, 400, 403, 403),
    "POST /api/v1/review-assignments/auto/": (401, 403, 403, 403, 400, 403, 403),
    "POST /api/v1/review-assignments/{id}/conflict/": (401, 403, 403, 400, 403, 403, 403),
    "POST /api/v1/review-assignments/{id}/no-conflict/": (401, 403, 403, 409, 403, 403, 403),
    "POST /api/v1/review-assignments/{id}/review/submit/": (401, 403, 403, 400, 403, 403, 403),
    "POST /api/v1/usage/imports/": (401, 403, 403, 403, 403, 415, 403),
    "GET /api/v1/usage/imports/{id}/": (404, 404, 404, 404, 404, 404, 404),
    # site tokens only: no person, whatever their role, reaches the site agent's endpoints
    "GET /api/v1/clusters/{cluster}/pending-changes/": (401, 401, 401, 401, 401, 401, 401),
    "POST /api/v1/exports/{id}/applied/": (401, 401, 401, 401, 401, 401, 401),
    "PUT /api/v1/review-assignments/{id}/review/": (401, 403, 403, 400, 403, 403, 403),
}  # fmt: skip


def _page_statuses(w, route) -> tuple[int, ...]:
    url = address(route, w)
    statuses = []
    for identity in IDENTITIES:
        client = Client()
        person = w.people[identity]
        if person is not None:
            client.force_login(person)
        statuses.append(client.get(url).status_code)
    return tuple(statuses)


def _dump(name, observed) -> None:
    print(f"{name} = {{")
    for key, statuses in sorted(observed.items()):
        print(f"    {json.dumps(key)}: {statuses},")
    print("}")


def test_every_page_answers_each_identity_as_expected(reference_data, open_call):
    w = world()
    observed = {route: _page_statuses(w, route) for route in patterns()}
    if DUMP:
        _dump("PAGES", observed)
    missing = sorted(set(observed) - set(PAGES))
    assert not missing, f"URL patterns with no expectation: {missing}"
    wrong = {
        route: {"expected": PAGES[route], "got": got}
        for route, got in observed.items()
        if got != PAGES[route]
    }
    assert not wrong, json.dumps(wrong, indent=1)
    assert not set(PAGES) - set(observed), "expectations for patterns that no longer exist"


def _operations() -> list[tuple[str, str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _fill(path: str, w) -> str:
    """An operation's path with its parameters, as the pages' routes are filled."""
    route = path.lstrip("/")
    route = route.replace("{id}", "<int:pk>").replace("{pk}", "<int:pk>")
    route = route.replace("{mode_id}", "<int:mode_id>").replace("{slug}", "<slug>")
    route = route.replace("{username}", "<username>")
    for prefix in (
        "applications",
        "allocations",
        "review-assignments",
        "change-requests",
        "alerts",
        "register",
        "auth/tokens",
        "decisions",
        "partitions",
        "calls",
    ):
        route = route.replace(f"api/v1/{prefix}/", f"api/v1/^{prefix}/", 1)
    return address(route, w).replace("/^", "/")


def test_every_api_operation_answers_each_identity_as_expected(reference_data, open_call):
    w = world()
    keys = {}
    for identity, person in w.people.items():
        if person is not None:
            keys[identity] = token_create(user=person, name="matrix")[1]
    observed = {}
    for method, path in _operations():
        url = _fill(path, w)
        statuses = []
        for identity in IDENTITIES:
            client = APIClient()
            if identity in keys:
                client.credentials(HTTP_AUTHORIZATION=f"Token {keys[identity]}")
            response = client.generic(method, url, "{}", content_type="application/json")
            statuses.append(response.status_code)
        observed[f"{method} {path}"] = tuple(statuses)
    if DUMP:
        _dump("OPERATIONS", observed)
    missing = sorted(set(observed) - set(OPERATIONS))
    assert not missing, f"API operations with no expectation: {missing}"
    wrong = {
        key: {"expected": OPERATIONS[key], "got": got}
        for key, got in observed.items()
        if got != OPERATIONS[key]
    }
    assert not wrong, json.dumps(wrong, indent=1)
    assert not set(OPERATIONS) - set(observed), "expectations for operations that are gone"

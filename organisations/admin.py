from django import forms
from django.contrib import admin
from django.db import models
from simple_history.admin import SimpleHistoryAdmin

from organisations.models import Country, Invitation, Membership, Organisation


@admin.register(Country)
class CountryAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "status"]
    list_filter = ["status"]
    search_fields = ["code", "name"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Organisation)
class OrganisationAdmin(SimpleHistoryAdmin):
    list_display = [
        "legal_name",
        "country",
        "registration_id",
        "controlled_by_registration_id",
        "staff_headcount",
    ]
    list_filter = ["country"]
    search_fields = ["legal_name", "registration_id", "controlled_by_registration_id"]
    inlines = [MembershipInline]
    formfield_overrides = {
        models.URLField: {"form_class": forms.URLField, "assume_scheme": "https"}
    }


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organisation", "role", "created_at", "accepted_at"]
    search_fields = ["email", "organisation__legal_name"]
    raw_id_fields = ["organisation", "invited_by", "accepted_by"]

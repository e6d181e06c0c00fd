import secrets
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from simple_history.models import HistoricalRecords


class Country(models.Model):
    """Countries and whether their organisations may apply (EU, EEA, associated countries)."""

    class Status(models.TextChoices):
        EU_MEMBER = "eu", "EU member state"
        EEA = "eea", "EEA country"
        ASSOCIATED = "associated", "Horizon Europe associated country"
        OTHER = "other", "Not eligible"

    code = models.CharField(max_length=2, primary_key=True, help_text="ISO 3166-1 alpha-2.")
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=12, choices=Status.choices)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "countries"

    def __str__(self) -> str:
        return self.name

    @property
    def is_eligible(self) -> bool:
        return self.status != self.Status.OTHER


class Organisation(models.Model):
    legal_name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code of the seat.")
    registration_id = models.CharField(
        max_length=64,
        db_index=True,
        help_text="Company register or VAT number, e.g. FI12345678.",
    )
    founding_date = models.DateField(null=True, blank=True)
    staff_headcount = models.PositiveIntegerField(null=True, blank=True)
    annual_turnover_eur = models.DecimalField(
        max_digits=14,
        decimal_places=0,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
    )
    balance_sheet_eur = models.DecimalField(
        "balance sheet total (EUR)",
        max_digits=14,
        decimal_places=0,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
    )
    website = models.URLField(blank=True)
    controlled_by_registration_id = models.CharField(
        "controlling organisation (registration id)",
        max_length=64,
        blank=True,
        db_index=True,
        help_text="Registration id of the organisation that controls this one, if any.",
    )
    beneficial_owners = models.TextField(
        blank=True,
        help_text="One beneficial owner per line (natural persons holding 25 % or more).",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="organisations"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["legal_name"]

    def __str__(self) -> str:
        return self.legal_name

    @property
    def beneficial_owner_names(self) -> list[str]:
        return [line.strip() for line in self.beneficial_owners.splitlines() if line.strip()]


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "user"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) in {self.organisation}"


def _invitation_token() -> str:
    return secrets.token_urlsafe(32)


class Invitation(models.Model):
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(
        max_length=10, choices=Membership.Role.choices, default=Membership.Role.MEMBER
    )
    token = models.CharField(max_length=64, unique=True, default=_invitation_token, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} to {self.organisation}"

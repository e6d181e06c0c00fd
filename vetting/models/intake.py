import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


def annex_upload_to(instance: "Application", filename: str) -> str:
    # Never reuse the uploaded name: it is untrusted and could collide or traverse.
    return f"applications/annex/{uuid.uuid4().hex}.pdf"


class Application(models.Model):
    """A startup's request for GPU time under one call and access mode."""

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        SCREENING = "screening", "Eligibility screening"
        INELIGIBLE = "ineligible", "Not eligible"
        IN_REVIEW = "in_review", "In review"
        REVIEWED = "reviewed", "Reviewed"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WAITLISTED = "waitlisted", "Waitlisted"
        WITHDRAWN = "withdrawn", "Withdrawn"

    # The call manager approves or rejects an application once its reviews are in.
    DECIDABLE_STATES = (State.REVIEWED, State.WAITLISTED)

    # The applicant may withdraw until a decision is taken.
    WITHDRAWABLE_STATES = (
        State.DRAFT,
        State.SUBMITTED,
        State.SCREENING,
        State.IN_REVIEW,
        State.REVIEWED,
        State.WAITLISTED,
    )

    class Domain(models.TextChoices):
        LANGUAGE = "language", "Language and text"
        CODE = "code", "Software and code"
        VISION = "vision", "Images and video"
        SPEECH = "speech", "Speech and audio"
        SCIENCE = "science", "Science and engineering"
        HEALTH = "health", "Health and life sciences"
        CLIMATE = "climate", "Climate, energy and environment"
        ROBOTICS = "robotics", "Robotics and autonomous systems"
        FINANCE = "finance", "Finance and business"
        OTHER = "other", "Other"

    class Openness(models.TextChoices):
        OPEN = "open", "Published openly (open access)"
        RESTRICTED = "restricted", "Partly published (delayed or selected results)"
        CLOSED = "closed", "Not published"

    class WeightsOpenness(models.TextChoices):
        OPEN = "open", "Open weights (public download, permissive licence)"
        RESTRICTED = "restricted", "Restricted weights (gated access or non-commercial licence)"
        CLOSED = "closed", "Closed weights"

    class Modality(models.TextChoices):
        TEXT = "text", "Text in, text out (language model)"
        CODE = "code", "Code generation"
        AUDIO = "audio", "Speech or audio generation"
        TEXT_TO_IMAGE = "text_to_image", "Text to image"
        TEXT_TO_VIDEO = "text_to_video", "Text to video"
        MULTIMODAL = "multimodal", "Multimodal (several of the above)"
        NON_GENERATIVE = "non_generative", "Non-generative (classification, prediction, control)"

    class TrainingKind(models.TextChoices):
        FROM_SCRATCH = "from_scratch", "Training from scratch"
        CONTINUED_PRETRAINING = "continued_pretraining", "Continued pre-training of a model"
        FINE_TUNING = "fine_tuning", "Fine-tuning a model"

    organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.PROTECT, related_name="applications"
    )
    call = models.ForeignKey("systems.Call", on_delete=models.PROTECT, related_name="applications")
    access_mode = models.ForeignKey(
        "systems.AccessMode", on_delete=models.PROTECT, related_name="applications"
    )
    state = models.CharField(max_length=12, choices=State.choices, default=State.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    # Project
    title = models.CharField(max_length=200, blank=True)
    abstract = models.TextField(blank=True)
    domain = models.CharField(max_length=20, choices=Domain.choices, blank=True)
    civilian_use_confirmed = models.BooleanField("exclusively civilian use", default=False)
    results_openness = models.CharField(max_length=12, choices=Openness.choices, blank=True)
    weights_openness = models.CharField(max_length=12, choices=WeightsOpenness.choices, blank=True)
    eu_market = models.BooleanField("placed on the EU market", null=True, blank=True)

    # Model plan
    model_name = models.CharField(
        "declared model",
        max_length=120,
        blank=True,
        db_index=True,
        help_text="The model lineage; compute is summed per model across allocations.",
    )
    modality = models.CharField(max_length=20, choices=Modality.choices, blank=True)
    training_kind = models.CharField(max_length=24, choices=TrainingKind.choices, blank=True)
    parameters = models.PositiveBigIntegerField(null=True, blank=True)
    training_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    base_model = models.CharField(max_length=200, blank=True)
    base_model_flop = models.FloatField("base model training compute (FLOP)", null=True, blank=True)
    base_is_systemic_risk = models.BooleanField(
        "base model has systemic risk", null=True, blank=True
    )
    synthetic_data_flop = models.FloatField(
        "compute for non-public synthetic data (FLOP)", null=True, blank=True
    )

    # Resources (GPU-hours per partition are ApplicationResource rows)
    start_date = models.DateField(null=True, blank=True)
    duration_months = models.PositiveSmallIntegerField(null=True, blank=True)
    expected_utilisation = models.FloatField(
        null=True, blank=True, help_text="Share of peak FLOP/s; empty: the policy default."
    )

    # Team
    pi_name = models.CharField("PI name", max_length=200, blank=True)
    pi_email = models.EmailField("PI e-mail", blank=True)
    pi_contract_end = models.DateField("PI contract end", null=True, blank=True)
    team_size = models.PositiveSmallIntegerField(null=True, blank=True)
    hpc_experience = models.TextField("HPC experience", blank=True)

    # Ethics self-assessment: {question key: {"answer": bool | None, "explanation": str}};
    # the questions are vetting.rules.ETHICS_QUESTIONS.
    ethics = models.JSONField(default=dict, blank=True)
    # AI Act commitments: keys of vetting.rules.COMMITMENTS.
    commitments = models.JSONField(default=list, blank=True)

    technical_annex = models.FileField(upload_to=annex_upload_to, blank=True, max_length=200)
    technical_annex_name = models.CharField(max_length=200, blank=True)

    # What the applicant typed that could not be read (e.g. "7 bilion"), kept for the draft.
    unparsed_input = models.JSONField(default=dict, blank=True)

    # Frozen at submission, with the threshold policy version used.
    estimate_snapshot = models.JSONField(null=True, blank=True)
    estimate_policy = models.ForeignKey(
        "systems.ThresholdPolicy",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    estimated_flop = models.FloatField("estimated training compute (FLOP)", null=True, blank=True)
    compute_class = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "call"])]

    def __str__(self) -> str:
        return self.title or f"Application #{self.pk} (untitled)"

    @property
    def is_draft(self) -> bool:
        return self.state == self.State.DRAFT

    @property
    def can_withdraw(self) -> bool:
        return self.state in self.WITHDRAWABLE_STATES

    @property
    def can_decide(self) -> bool:
        return self.state in self.DECIDABLE_STATES


# Fields a draft save may set, in form order.
DRAFT_FIELDS = (
    "title",
    "abstract",
    "domain",
    "civilian_use_confirmed",
    "results_openness",
    "weights_openness",
    "eu_market",
    "model_name",
    "modality",
    "training_kind",
    "parameters",
    "training_tokens",
    "base_model",
    "base_model_flop",
    "base_is_systemic_risk",
    "synthetic_data_flop",
    "start_date",
    "duration_months",
    "expected_utilisation",
    "pi_name",
    "pi_email",
    "pi_contract_end",
    "team_size",
    "hpc_experience",
    "ethics",
    "commitments",
)


class ApplicationResource(models.Model):
    """GPU-hours asked for on one eligible partition."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="resources")
    partition = models.ForeignKey("systems.Partition", on_delete=models.PROTECT, related_name="+")
    gpu_hours = models.PositiveBigIntegerField()

    class Meta:
        ordering = ["partition__cluster__name", "partition__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "partition"], name="application_resource_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.partition}: {self.gpu_hours:,} GPU-hours"


class ApplicationEvent(models.Model):
    """Audit trail of an application: who moved it from which state to which, when and why.

    `reason` is internal; `public_note` is what the applicant sees. Applicants never see `actor`.
    """

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=12, blank=True)
    to_state = models.CharField(max_length=12)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(blank=True)
    public_note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.application}: {self.from_state or 'new'} -> {self.to_state}"

    @property
    def to_state_label(self) -> str:
        return Application.State(self.to_state).label

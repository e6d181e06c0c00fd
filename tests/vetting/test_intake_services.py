from datetime import timedelta

import pytest
from django.utils import timezone

from demo.builders import complete_fields, pdf_upload
from systems.models import Partition, ThresholdPolicy
from tests.factories import make_application, make_organisation, make_user
from vetting.models import Application, ApplicationEvent
from vetting.services import intake as services


@pytest.fixture
def leonardo(open_call):
    return Partition.objects.get(cluster__name="leonardo")


def test_complete_draft_is_submitted_with_an_estimate_snapshot(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call)
    services.application_submit(application=application, actor=applicant)
    application.refresh_from_db()
    assert application.state == Application.State.SUBMITTED
    assert application.submitted_at is not None
    policy = ThresholdPolicy.objects.in_force()
    assert application.estimate_policy == policy
    snapshot = application.estimate_snapshot
    assert snapshot["policy_version"] == policy.version
    # 20,000 A100-hours x 312 TFLOP/s x 0.4
    assert snapshot["total"]["flop_hardware"] == pytest.approx(20_000 * 3600 * 312e12 * 0.4)
    assert snapshot["total"]["flop_architecture"] == pytest.approx(6 * 7e9 * 200e9)
    assert application.estimated_flop == snapshot["total"]["flop_best"]
    assert application.compute_class == "below_gpai"
    assert snapshot["partitions"][0]["partition"] == "leonardo/boost_usr_prod"


def test_submit_records_who_and_when(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call)
    services.application_submit(application=application, actor=applicant)
    event = application.events.last()
    assert (event.from_state, event.to_state, event.actor) == ("draft", "submitted", applicant)


def test_incomplete_draft_cannot_be_submitted_and_keeps_its_state(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call, complete=False)
    with pytest.raises(services.ApplicationInvalid) as caught:
        services.application_submit(application=application, actor=applicant)
    assert "title" in caught.value.errors
    assert "technical_annex" in caught.value.errors
    application.refresh_from_db()
    assert application.state == Application.State.DRAFT


def test_submitted_application_cannot_be_submitted_again(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call)
    services.application_submit(application=application, actor=applicant)
    with pytest.raises(services.TransitionError, match="submitted, so it cannot be submitted"):
        services.application_submit(application=application, actor=applicant)
    assert application.events.filter(to_state="submitted").count() == 1


def test_submitted_application_cannot_be_changed(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call)
    services.application_submit(application=application, actor=applicant)
    with pytest.raises(services.TransitionError, match="cannot be changed"):
        services.application_save_draft(
            application=application, actor=applicant, fields={"title": "Changed"}
        )
    application.refresh_from_db()
    assert application.title == "Finnish legal language model"


def test_withdraw_after_submission(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call)
    services.application_submit(application=application, actor=applicant)
    services.application_withdraw(application=application, actor=applicant, reason="Funding")
    application.refresh_from_db()
    assert application.state == Application.State.WITHDRAWN
    event = application.events.last()
    assert (event.from_state, event.to_state, event.reason) == ("submitted", "withdrawn", "Funding")


@pytest.mark.parametrize("state", ["approved", "rejected", "ineligible", "withdrawn"])
def test_no_withdrawal_after_a_decision(applicant, open_call, state):
    application = make_application(applicant=applicant, call=open_call)
    Application.objects.filter(pk=application.pk).update(state=state)
    with pytest.raises(services.TransitionError, match="cannot be withdrawn"):
        services.application_withdraw(application=application, actor=applicant)


def test_only_members_can_start_an_application(applicant, outsider, open_call):
    organisation = make_organisation(owner=applicant)
    with pytest.raises(PermissionError):
        services.application_create(
            user=outsider,
            organisation=organisation,
            access_mode=open_call.access_modes.first(),
        )


def test_draft_keeps_unreadable_input_and_submit_reports_it(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call)
    services.application_save_draft(
        application=application,
        actor=applicant,
        fields={"parameters": None},
        unparsed={"parameters": {"text": "7 bilion", "error": "We could not read it."}},
    )
    application.refresh_from_db()
    assert application.unparsed_input["parameters"]["text"] == "7 bilion"
    with pytest.raises(services.ApplicationInvalid) as caught:
        services.application_submit(application=application, actor=applicant)
    assert caught.value.errors["parameters"] == ["We could not read it."]


def test_a_later_readable_value_clears_the_unreadable_one(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call)
    services.application_save_draft(
        application=application,
        actor=applicant,
        fields={},
        unparsed={"parameters": {"text": "7 bilion", "error": "x"}},
    )
    services.application_save_draft(
        application=application, actor=applicant, fields={"parameters": 7_000_000_000}
    )
    application.refresh_from_db()
    assert application.unparsed_input == {}


def test_resources_are_replaced_per_partition(applicant, open_call, leonardo):
    application = make_application(applicant=applicant, call=open_call)
    lumi = Partition.objects.get(cluster__name="lumi")
    services.application_save_draft(
        application=application,
        actor=applicant,
        fields={},
        resources={leonardo.pk: None, lumi.pk: 1000},
    )
    assert {(r.partition_id, r.gpu_hours) for r in application.resources.all()} == {(lumi.pk, 1000)}


def test_annex_that_is_not_a_pdf_is_refused(applicant, open_call):
    from django.core.files.uploadedfile import SimpleUploadedFile

    application = make_application(applicant=applicant, call=open_call, complete=False)
    fake = SimpleUploadedFile("annex.pdf", b"PK\x03\x04 a word file", "application/pdf")
    with pytest.raises(services.ApplicationInvalid) as caught:
        services.application_save_draft(
            application=application, actor=applicant, fields={}, annex=fake
        )
    assert "not a PDF" in caught.value.errors["technical_annex"][0]


def test_annex_is_stored_under_a_generated_name(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call, complete=False)
    services.application_save_draft(
        application=application,
        actor=applicant,
        fields={},
        annex=pdf_upload("../../etc/passwd.pdf"),
    )
    application.refresh_from_db()
    assert application.technical_annex.name.startswith("applications/annex/")
    assert "passwd" not in application.technical_annex.name
    assert application.technical_annex_name == "passwd.pdf"


def test_changing_the_access_mode_drops_partitions_it_does_not_offer(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call)
    playground = open_call.access_modes.get(kind="playground")
    playground.accessmodepartition_set.exclude(partition__cluster__name="lumi").delete()
    services.application_save_draft(
        application=application, actor=applicant, fields={}, access_mode=playground
    )
    application.refresh_from_db()
    assert application.access_mode == playground
    assert not application.resources.exists()


def test_gpai_plan_requires_the_article_53_commitments(applicant, open_call):
    # 300,000 H100-hours at 0.4: ~4.3e23 FLOP, a GPAI model.
    application = make_application(
        applicant=applicant, call=open_call, kind="large_scale", gpu_hours=300_000
    )
    mn5 = Partition.objects.get(cluster__name="marenostrum5")
    leonardo = Partition.objects.get(cluster__name="leonardo")
    services.application_save_draft(
        application=application,
        actor=applicant,
        fields={"duration_months": 6},
        resources={leonardo.pk: None, mn5.pk: 300_000},
    )
    with pytest.raises(services.ApplicationInvalid) as caught:
        services.application_submit(application=application, actor=applicant)
    assert "Annex XI" in caught.value.errors["commitments"][0]
    services.application_save_draft(
        application=application,
        actor=applicant,
        fields={"commitments": ["annex_xi", "annex_xii", "copyright_policy", "training_summary"]},
    )
    services.application_submit(application=application, actor=applicant)
    application.refresh_from_db()
    assert application.compute_class == "gpai"


def test_start_in_the_past_is_refused_at_submit(applicant, open_call):
    application = make_application(
        applicant=applicant, call=open_call, start=timezone.localdate() - timedelta(days=1)
    )
    with pytest.raises(services.ApplicationInvalid) as caught:
        services.application_submit(application=application, actor=applicant)
    assert "in the past" in caught.value.errors["start_date"][0]


def test_every_transition_leaves_an_event(applicant, open_call):
    application = make_application(applicant=applicant, call=open_call)
    services.application_submit(application=application, actor=applicant)
    services.application_withdraw(application=application, actor=applicant)
    assert list(
        ApplicationEvent.objects.filter(application=application).values_list("to_state", flat=True)
    ) == ["draft", "submitted", "withdrawn"]


def test_complete_fields_cover_every_draft_field_the_form_asks_for():
    from vetting.models import DRAFT_FIELDS

    optional = {"base_model", "base_model_flop", "base_is_systemic_risk", "synthetic_data_flop"}
    assert set(DRAFT_FIELDS) - set(complete_fields()) == optional | {"expected_utilisation"}


def test_a_replaced_annex_is_deleted(applicant, open_call, django_capture_on_commit_callbacks):
    application = make_application(applicant=applicant, call=open_call)
    old = application.technical_annex.name
    storage = application.technical_annex.storage
    assert storage.exists(old)
    with django_capture_on_commit_callbacks(execute=True):
        services.application_save_draft(
            application=application, actor=applicant, fields={}, annex=pdf_upload("v2.pdf")
        )
    application.refresh_from_db()
    assert application.technical_annex.name != old
    assert storage.exists(application.technical_annex.name)
    assert not storage.exists(old)


def test_line_breaks_in_a_title_do_not_reach_the_mail_subjects(
    applicant, open_call, call_manager, django_capture_on_commit_callbacks, mailoutbox
):
    from vetting.services import review

    application = make_application(applicant=applicant, call=open_call)
    services.application_save_draft(
        application=application,
        actor=applicant,
        fields={"title": "Legal LLM\r\nBcc: victim@example.org"},
    )
    application.refresh_from_db()
    assert application.title == "Legal LLM Bcc: victim@example.org"
    services.application_submit(application=application, actor=applicant)
    review.application_screen(application_id=application.pk)
    reviewer = make_user(role="reviewer")
    with django_capture_on_commit_callbacks(execute=True):
        review.reviewer_assign(application=application, reviewer=reviewer, actor=call_manager)
    assert mailoutbox
    assert all("\n" not in message.subject for message in mailoutbox)


def test_mail_subjects_are_one_line_whatever_the_template_gives():
    from core.mail import one_line

    assert one_line("Join Acme\nOy\r\n on hpcgate") == "Join Acme Oy on hpcgate"

"""The registry in the Django admin: drafts for frontend teams, a review queue for release
managers, and the audit history of everything.

Every workflow step calls ``contracts.services``; this module only decides what each
role sees and turns ``ActionError`` into a message or a form error.
"""

from __future__ import annotations

import json

import orjson
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from aggregation.usage import Usage
from contracts import services
from contracts.models import (
    WORKFLOW,
    Client,
    ContractVersion,
    Endpoint,
    FieldRule,
    LifecycleProposal,
    MajorVersion,
    ProposalKind,
    ProposalStatus,
    ReviewQueue,
    Status,
)
from contracts.paths import RuleError, leaf_paths, parse, sensitivity
from contracts.preview import preview
from contracts.schema import INTERNAL, PERSONAL, EndpointSpec, Rule

admin.site.site_header = "BFF contract registry"
admin.site.site_title = "BFF contract registry"
admin.site.index_title = "Contracts, reviews and history"
admin.site.site_url = None  # the BFF has no HTML site to link back to


class HistoryValues(HistoricalRecordContextHelper):
    """History changes with an empty foreign key shown as "-", not "Deleted user (pk=None)"."""

    def prepare_delta_change_value(self, change, value):
        if value is None or (isinstance(value, DeletedObject) and value.pk is None):
            return "-"
        return super().prepare_delta_change_value(change, value)


class RegistryAdmin(SimpleHistoryAdmin):
    """Base of the registry's admins: each team sees its own client's rows; history is read-only.

    ``client_lookup`` is the path from the model to ``Client.name``. Release managers and
    superusers see every client. django-simple-history's per-version form ("Revert")
    saves a POST after checking only view permission and ignores ``get_queryset``: here
    history pages answer only for rows the user may see, and never save anything. Every
    change goes through the workflow (``contracts.services``) instead.
    """

    client_lookup = "client__name"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        user = request.user
        if user.is_superuser or services.is_release_manager(user):
            return queryset
        return queryset.filter(**{f"{self.client_lookup}__in": services.editable_clients(user)})

    def _require_visible(self, request: HttpRequest, object_id: str) -> None:
        try:
            pk = self.model._meta.pk.to_python(unquote(object_id))
        except ValidationError:
            raise Http404 from None
        if self.get_queryset(request).filter(pk=pk).exists():
            return
        user = request.user
        sees_everything = user.is_superuser or services.is_release_manager(user)
        if sees_everything and not self.model._default_manager.filter(pk=pk).exists():
            return  # a deleted row: its history stays readable by those who see every client
        raise Http404

    def get_historical_record_context_helper(self, request, historical_record):
        return HistoryValues(self.model, historical_record)

    def history_view(self, request, object_id, extra_context=None):
        self._require_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied("History is read-only; changes go through the workflow.")
        self._require_visible(request, object_id)
        request.registry_history_form = True  # see has_change_permission
        return super().history_form_view(request, object_id, version_id, extra_context)

    def revert_disabled(self, request, obj=None) -> bool:
        return True

    def has_change_history_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        if getattr(request, "registry_history_form", False):
            return False
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if getattr(request, "registry_history_form", False):
            fields = [field.name for field in self.opts.fields]
            return [*super().get_readonly_fields(request, obj), *fields]
        return super().get_readonly_fields(request, obj)


def _spec(version: ContractVersion) -> EndpointSpec | None:
    try:
        return services.spec_for(version.major.endpoint)
    except services.ActionError:
        return None


# --- Field rules -------------------------------------------------------------------------


def _short(label: str, limit: int = 32) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


SENSITIVITY_LABELS = {INTERNAL: " · internal", PERSONAL: " · personal data"}


def field_choices(spec: EndpointSpec) -> list:
    """The field picker's options: exactly the fields the code's source schemas declare,
    internal and personal ones labelled so."""
    return [
        (
            section.name,
            [
                (
                    f"{section.name}:{p}",
                    f"{section.name}.{p} ({t})"
                    + SENSITIVITY_LABELS.get(sensitivity(section.source, p), ""),
                )
                for p, t in leaf_paths(section.source)
            ],
        )
        for section in spec.sections
    ]


def when(value) -> str:
    """Every date the registry shows, in the one admin format (bff_project/formats)."""
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "-"


def usage_cells(usage: Usage | None) -> tuple[str, str, str]:
    if usage is None:
        return ("-", "-", "-")
    return (str(usage.last_24h), str(usage.last_7d), when(usage.last_seen))


class FieldRuleForm(forms.ModelForm):
    field = forms.ChoiceField(label="Field", help_text="Only fields the source declares.")

    class Meta:
        model = FieldRule
        fields = ["output_name", "position"]

    spec: EndpointSpec | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "output_name" not in self.fields:  # the read-only view of a frozen version
            return
        self.fields["field"].choices = [("", "---------")] + (
            field_choices(self.spec) if self.spec else []
        )
        if self.instance.pk:
            self.fields["field"].initial = f"{self.instance.section}:{self.instance.source_path}"
            if self.instance.output_name == self.instance.source_path:
                self.initial["output_name"] = ""
        self.fields["output_name"].required = False
        self.fields["position"].required = False

    def clean_output_name(self) -> str:
        value = (self.cleaned_data.get("output_name") or "").strip()
        if value:
            try:
                parse(value)
            except RuleError as exc:
                raise ValidationError(str(exc)) from None
        return value

    def clean(self) -> dict:
        data = super().clean()
        choice = data.get("field")
        if choice:
            section, _, source = choice.partition(":")
            self.instance.section = section
            self.instance.source_path = source
            self.instance.output_name = data.get("output_name") or source
            if data.get("position") is None:
                self.instance.position = 0
        return data


class FieldRuleFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        rules = [
            Rule(
                form.instance.section,
                form.instance.source_path,
                form.cleaned_data.get("output_name") or "",
            )
            for form in self.forms
            if form.cleaned_data
            and not form.cleaned_data.get("DELETE")
            and form.cleaned_data.get("field")
        ]
        try:
            services.code_shape(self.instance.major.endpoint, rules)
        except services.ActionError as exc:
            raise ValidationError(str(exc)) from None


class FieldRuleInline(admin.TabularInline):
    model = FieldRule
    form = FieldRuleForm
    formset = FieldRuleFormSet
    extra = 0
    fields = ["field", "output_name", "position", "json_type"]
    readonly_fields = ["json_type"]
    ordering = ["section", "position", "id"]

    def get_formset(self, request, obj=None, **kwargs):
        spec = _spec(obj) if obj else None
        kwargs["form"] = type("BoundFieldRuleForm", (FieldRuleForm,), {"spec": spec})
        return super().get_formset(request, obj, **kwargs)

    def _editable(self, request, obj) -> bool:
        return bool(
            obj is not None
            and obj.status == Status.DRAFT
            and services.can_edit_client(request.user, obj.major.endpoint.client.name)
        )

    def has_add_permission(self, request, obj=None) -> bool:
        return self._editable(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._editable(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._editable(request, obj)

    def get_fields(self, request, obj=None):
        if self._editable(request, obj):
            return self.fields
        return ["section", "source_path", "output_name", "json_type"]

    def get_readonly_fields(self, request, obj=None):
        if self._editable(request, obj):
            return self.readonly_fields
        return ["section", "source_path", "output_name", "json_type"]


# --- Contract versions -------------------------------------------------------------------


class NewDraftForm(forms.Form):
    endpoint = forms.ModelChoiceField(queryset=Endpoint.objects.none())
    new_major = forms.BooleanField(
        required=False,
        help_text="Start the next major version (a new URL): the only place breaking "
        "changes may go.",
    )
    summary = forms.CharField(max_length=300, required=False)


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            ("approve", "Approve"),
            ("request_changes", "Request changes"),
            ("reject", "Reject"),
        ]
    )
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    internal_override = forms.CharField(
        max_length=300,
        required=False,
        label="Reason to let internal fields through",
        help_text="Only when this external contract must carry fields marked internal.",
    )


def _changes_table(changes: list[dict] | None) -> str:
    if not changes:
        return format_html("<p>{}</p>", "No changes against the version it replaces.")
    rows = format_html_join(
        "",
        '<tr class="change-{}"><td><strong>{}</strong></td><td><code>{}</code></td>'
        '<td>{}</td><td>{}</td><td><code title="{}">{}</code></td></tr>',
        (
            (
                c["compatibility"],
                c["compatibility"],
                c["path"],
                c["kind"],
                c["detail"],
                c["fingerprint"],
                c["fingerprint"][:12],
            )
            for c in changes
        ),
    )
    return format_html(
        '<table class="contract-diff"><thead><tr><th>compatibility</th><th>path</th>'
        "<th>change</th><th>detail</th><th>change id</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


def _version_link(version: ContractVersion | None) -> str:
    if version is None:
        return "-"
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:contracts_contractversion_change", args=[version.pk]),
        version.label,
    )


def _is_live(version: ContractVersion) -> bool:
    """Whether this is the version its major serves (the newest approved one)."""
    if version.status != Status.APPROVED:
        return False
    latest = services.latest_approved(version.major)
    return latest is not None and latest.pk == version.pk


def usage_table(major: MajorVersion, *, highlight: int | None = None) -> str:
    """Traffic of a major and each of its minors: last 24 h, 7 d, last seen."""
    if major.number is None:
        return format_html("<p>{}</p>", "No traffic: this major has no approved version yet.")
    total, per_minor = services.major_usage(major)
    rows = [
        (
            "usage-total",
            f"{major.label} (all minors)",
            *usage_cells(total),
        )
    ]
    for minor, usage in sorted(per_minor.items()):
        css = "usage-minor usage-highlight" if minor == highlight else "usage-minor"
        rows.append((css, f"{major.number}.{minor}", *usage_cells(usage)))
    body = format_html_join(
        "",
        '<tr class="{}"><td>{}</td><td class="usage-24h">{}</td><td class="usage-7d">{}</td>'
        '<td class="usage-seen">{}</td></tr>',
        rows,
    )
    return format_html(
        '<table class="usage"><thead><tr><th>version</th><th>last 24 h</th><th>last 7 d</th>'
        "<th>last seen</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )


def _in_use_warning(usage: Usage, what: str) -> str:
    if not usage.in_use:
        return ""
    return (
        f"{what} is still in use: {usage.last_7d} requests in the last 7 days, "
        f"the last at {when(usage.last_seen)}."
    )


@admin.register(ContractVersion)
class ContractVersionAdmin(RegistryAdmin):
    client_lookup = "major__endpoint__client__name"
    inlines = [FieldRuleInline]
    # Few, narrow columns: the list must fit a laptop screen without scrolling sideways.
    list_display = ["endpoint_name", "version_label", "status", "author", "updated"]
    # Related-only filters: a team must not even see the names of other clients' endpoints.
    list_filter = [
        "status",
        ("major__endpoint__client", admin.RelatedOnlyFieldListFilter),
        ("major__endpoint", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["change_summary", "review_comment", "major__endpoint__name"]
    list_select_related = ["major__endpoint__client", "author", "approver"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "endpoint_name",
                    "version_label",
                    "status",
                    "change_summary",
                    "based_on",
                    "author",
                ]
            },
        ),
        (
            "Review",
            {
                "fields": [
                    "approver",
                    "review_comment",
                    "internal_override",
                    "classified_diff",
                    "fingerprint",
                    "created_at",
                    "submitted_at",
                    "reviewed_at",
                ]
            },
        ),
        ("Audit trail", {"classes": ["collapse"], "fields": ["audit_trail"]}),
    ]
    change_form_template = "admin/contracts/contractversion/change_form.html"

    # -- what each role sees

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("major__endpoint__client", "author", "approver", "based_on__major")
        )

    def has_change_permission(self, request, obj=None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        if obj is None:
            return True
        return obj.status == Status.DRAFT and services.can_edit_client(
            request.user, obj.major.endpoint.client.name
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is None or "delete" not in services.allowed_actions(request.user, obj):
            return False
        return super().has_delete_permission(request, obj) or obj.author_id == request.user.pk

    def delete_model(self, request, obj) -> None:
        services.DeleteDraft(request.user, obj).execute()

    def delete_queryset(self, request, queryset) -> None:
        for version in queryset:
            services.DeleteDraft(request.user, version).execute()

    def get_readonly_fields(self, request, obj=None):
        editable = {"change_summary"} if self.has_change_permission(request, obj) else set()
        names = [name for _, options in self.fieldsets for name in options["fields"]]
        return [name for name in names if name not in editable]

    # -- columns and panels

    @admin.display(description="endpoint", ordering="major__endpoint__name")
    def endpoint_name(self, obj: ContractVersion) -> str:
        return str(obj.major.endpoint)

    @admin.display(description="version")
    def version_label(self, obj: ContractVersion) -> str:
        if _is_live(obj):
            return format_html('{} <span class="live-marker" title="{}">live</span>',
                               obj.label, "the version its major serves")  # fmt: skip
        return obj.label

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, obj: ContractVersion) -> str:
        return when(obj.updated_at)

    def live_preview(self, obj: ContractVersion) -> str:
        """The draft's preview panel; preview.js refreshes it as the rules are edited."""
        spec = _spec(obj)
        if spec is None:
            return format_html("<p>{}</p>", "This code declares no such endpoint.")
        data = preview(spec, services.rules_of(obj))
        if "shape" in data:
            changes = services.changes_between(services.baseline_for(obj), data["shape"])
            data["changes"] = services.serialise_changes(changes)
        return format_html(
            '<div id="contract-preview" data-url="{}" data-payload-bytes="{}">'
            '<p class="preview-size" id="preview-size"></p>'
            '<p class="errornote" id="preview-error" hidden></p>'
            '<h3>Changes against the version it replaces</h3><div id="preview-changes">{}</div>'
            '<h3>Projected sample payload</h3><pre class="preview-json" id="preview-payload"></pre>'
            '<details><summary>Shape</summary><pre class="preview-json" id="preview-shape"></pre>'
            '</details><pre id="preview-data" hidden>{}</pre></div>',
            reverse("admin:contracts_contractversion_preview", args=[obj.pk]),
            data.get("payloadBytes", ""),
            _changes_table(data.get("changes")),
            json.dumps(data, ensure_ascii=False),
        )

    @admin.display(description="classified diff")
    def classified_diff(self, obj: ContractVersion) -> str:
        if obj.status == Status.DRAFT:
            return format_html("<p>{}</p>", "Shown live in the preview below the rules.")
        if obj.status == Status.SUBMITTED:
            # Against what is approved now, not what was approved at submission.
            baseline = services.baseline_for(obj)
            changes = services.serialise_changes(services.changes_between(baseline, obj.shape))
        else:
            baseline, changes = obj.based_on, obj.diff
        against = f"against {baseline.label}" if baseline else "first version"
        return format_html("<p>{}</p>{}", against, _changes_table(changes))

    @admin.display(description="audit trail")
    def audit_trail(self, obj: ContractVersion) -> str:
        entries = []
        for record in obj.history.select_related("history_user").order_by("history_date"):
            what = f"version {record.get_history_type_display().lower()}: status {record.status}"
            if record.history_change_reason:
                what += f" ({record.history_change_reason})"
            if record.status == Status.APPROVED and record.internal_override:
                what += f" (internal fields let through: {record.internal_override})"
            entries.append((record.history_date, record.history_user, what))
        for record in FieldRule.history.filter(version_id=obj.pk).select_related("history_user"):
            action = {"+": "added", "~": "changed", "-": "removed"}[record.history_type]
            entries.append(
                (
                    record.history_date,
                    record.history_user,
                    f"rule {action}: {record.section}.{record.source_path} → {record.output_name}",
                )
            )
        for record in LifecycleProposal.history.filter(version_id=obj.pk).select_related(
            "history_user", "proposer", "reviewer"
        ):
            reviewer = f", reviewer {record.reviewer}" if record.reviewer_id else ""
            entries.append(
                (
                    record.history_date,
                    record.history_user,
                    f"retirement {record.status}: proposed by {record.proposer}{reviewer}",
                )
            )
        entries.sort(key=lambda entry: entry[0])
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((when(at), who or "-", what) for at, who, what in entries),
        )
        return format_html('<table class="audit"><tbody>{}</tbody></table>', rows)

    # -- workflow views

    def get_urls(self):
        views = {
            "preview": self.preview_view,
            "review": self.review_view,
            "new-draft": self.new_draft_view,
            "retire": self.retire_view,
            "workflow": self.workflow_view,
        }
        own = [
            path(
                f"<int:pk>/{name}/",
                self.admin_site.admin_view(view),
                name=f"contracts_contractversion_{name.replace('-', '_')}",
            )
            for name, view in views.items()
        ]
        return own + super().get_urls()

    def _visible(self, request, pk: int) -> ContractVersion:
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def _back(self, pk: int) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:contracts_contractversion_change", args=[pk]))

    def preview_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        """Live preview of the rules currently in the form (not yet saved)."""
        version = self._visible(request, pk)
        spec = _spec(version)
        if spec is None:
            return JsonResponse({"error": "this code declares no such endpoint"}, status=400)
        if request.method != "POST":
            return JsonResponse(preview(spec, services.rules_of(version)))
        try:
            body = orjson.loads(request.body or b"{}")
            rules = [
                Rule(*str(item["field"]).split(":", 1), str(item.get("output") or "").strip())
                for item in body.get("rules", [])
                if item.get("field") and ":" in str(item["field"])
            ]
        except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError):
            return JsonResponse(
                {"error": 'send {"rules": [{"field": ..., "output": ...}]}'}, status=400
            )
        data = preview(spec, rules)
        if "shape" in data:
            changes = services.changes_between(services.baseline_for(version), data["shape"])
            data["changes"] = services.serialise_changes(changes)
        return JsonResponse(data, json_dumps_params={"ensure_ascii": False})

    def _submit(self, request: HttpRequest, version: ContractVersion) -> None:
        action = services.SubmitForReview(request.user, version)
        try:
            action.execute()
        except services.ActionError as exc:
            self.message_user(request, f"Saved, not submitted: {exc}", messages.ERROR)
            return
        self.message_user(
            request, f"{version.major.endpoint} draft submitted for review.", messages.SUCCESS
        )
        for warning in action.warnings:
            self.message_user(request, f"Note: {warning}.", messages.WARNING)

    def response_change(self, request, obj):
        # The Submit button posts the change form itself: pending rule edits are saved
        # first (save_model, save_formset), then the saved draft is submitted.
        if "_submit" in request.POST:
            self._submit(request, obj)
            return self._back(obj.pk)
        return super().response_change(request, obj)

    def workflow_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The team's steps on a version: withdraw, update from the new base."""
        version = self._visible(request, pk)
        if request.method != "POST":
            return self._back(pk)
        step = request.POST.get("step", "")
        actions = {"withdraw": services.Withdraw, "update_from_base": services.UpdateFromBase}
        if step not in actions:
            return self._back(pk)
        try:
            actions[step](request.user, version).execute()
        except services.ActionError as exc:
            self.message_user(request, f"Not done: {exc}", messages.ERROR)
        else:
            self.message_user(request, f"{WORKFLOW[step].label}: done.", messages.SUCCESS)
        return self._back(pk)

    def review_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self._visible(request, pk)
        if not services.is_release_manager(request.user):
            raise PermissionDenied("Only release managers review contract versions.")
        form = ReviewForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            decision = form.cleaned_data["decision"]
            comment = form.cleaned_data["comment"]
            try:
                if decision == "approve":
                    done = services.Approve(
                        request.user,
                        version,
                        comment=comment,
                        internal_override=form.cleaned_data["internal_override"],
                    ).execute()
                    self.message_user(
                        request,
                        f"Approved as {done.label}; serving within a second.",
                        messages.SUCCESS,
                    )
                elif decision == "request_changes":
                    services.RequestChanges(request.user, version, comment=comment).execute()
                    self.message_user(
                        request, "Changes requested; the draft is back with its team.",
                        messages.SUCCESS,
                    )  # fmt: skip
                else:
                    services.Reject(request.user, version, comment=comment).execute()
                    self.message_user(request, "Rejected.", messages.SUCCESS)
            except services.ActionError as exc:
                form.add_error(None, str(exc))
            else:
                return HttpResponseRedirect(reverse("admin:contracts_reviewqueue_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Review {version}",
            "version": version,
            "form": form,
            "opts": self.model._meta,
            **review_facts(version),
        }
        return TemplateResponse(request, "admin/contracts/contractversion/review.html", context)

    def new_draft_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self._visible(request, pk)
        if request.method != "POST":
            return self._back(pk)
        try:
            draft = services.CreateDraft(
                request.user,
                version.major.endpoint,
                from_version=version,
                new_major=request.POST.get("new_major") == "1",
            ).execute()
        except services.ActionError as exc:
            self.message_user(request, f"No draft created: {exc}", messages.ERROR)
            return self._back(pk)
        self.message_user(request, f"Draft created from {version.label}.", messages.SUCCESS)
        return self._back(draft.pk)

    def retire_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Propose retiring a version, showing what clients would receive; confirm or
        decline another release manager's proposal."""
        version = self._visible(request, pk)
        if not services.is_release_manager(request.user):
            raise PermissionDenied("Only release managers retire contract versions.")
        pending = LifecycleProposal.objects.filter(
            version=version, kind=ProposalKind.RETIRE_VERSION, status=ProposalStatus.PENDING
        ).first()
        if request.method == "POST":
            done = lifecycle_post(
                self, request, pending, lambda reason: services.ProposeRetirement(
                    request.user, version, reason=reason
                ).execute(),
            )  # fmt: skip
            if done:
                return HttpResponseRedirect(request.path)
        major = version.major
        _, per_minor = services.major_usage(major)
        warning = _in_use_warning(per_minor.get(version.minor, Usage()), version.label)
        effect = services.retirement_effect(version) if version.status == Status.APPROVED else ""
        context = lifecycle_context(
            self, request, title=f"Retire {version}", subject=_version_link(version),
            effect=effect, usage=usage_table(major, highlight=version.minor), warning=warning,
            pending=pending, can_propose=version.status == Status.APPROVED and pending is None,
            proposals=LifecycleProposal.objects.filter(version=version),
            propose_label="Propose retiring this version", form=None,
            back=reverse("admin:contracts_contractversion_change", args=[pk]),
        )  # fmt: skip
        return TemplateResponse(request, "admin/contracts/lifecycle.html", context)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = NewDraftForm(request.POST or None)
        form.fields["endpoint"].queryset = Endpoint.objects.filter(
            client__name__in=services.editable_clients(request.user)
        ).select_related("client")
        if request.method == "POST" and form.is_valid():
            try:
                draft = services.CreateDraft(
                    request.user,
                    form.cleaned_data["endpoint"],
                    new_major=form.cleaned_data["new_major"],
                    summary=form.cleaned_data["summary"],
                ).execute()
            except services.ActionError as exc:
                form.add_error(None, str(exc))
            else:
                return self._back(draft.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "New contract draft",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/contracts/contractversion/new_draft.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if version is not None:
            allowed = services.allowed_actions(request.user, version)
            if version.status == Status.SUBMITTED and services.is_release_manager(request.user):
                allowed.add("review")
            extra.update(
                allowed=allowed,
                version=version,
                is_live=_is_live(version),
                notices=version_notices(version),
                preview_panel=self.live_preview(version) if version.status == Status.DRAFT else "",
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        spec = _spec(form.instance)
        for removed in formset.deleted_objects:
            removed.delete()
        for rule in instances:
            if spec is not None:
                rule.json_type = services.json_type_of(spec, Rule(rule.section, rule.source_path))
            rule.save()


def version_notices(version: ContractVersion) -> list[str]:
    """What the page should say before anyone acts on this version."""
    notices = []
    if version.status == Status.DRAFT and version.review_comment:
        notices.append(f"Changes requested: {version.review_comment}")
    if version.status in (Status.DRAFT, Status.SUBMITTED):
        baseline = services.baseline_for(version)
        if baseline is not None and version.based_on_id not in (None, baseline.pk):
            notices.append(
                f"{baseline.label} was approved since this version was started from "
                f"{version.based_on.label}: update it from the new base."
            )
        shape = version.shape if version.status == Status.SUBMITTED else None
        notices += [f"Note: {w}." for w in services.workflow_warnings(version, shape)]
        spec = _spec(version)
        client = version.major.endpoint.client.name
        if spec is not None and client in services.EXTERNAL_CLIENTS:
            internal = services.internal_fields(spec, services.rules_of(version))
            if internal:
                notices.append(
                    f"{', '.join(internal)}: internal, and {client} is an external client. "
                    "A release manager must override this with a reason at review."
                )
    return notices


def review_facts(version: ContractVersion) -> dict:
    """Everything a release manager weighs, computed now (the base may have moved)."""
    spec = _spec(version)
    baseline = services.baseline_for(version)
    rules = services.rules_of(version)
    facts: dict = {
        "baseline": baseline,
        "baseline_link": _version_link(baseline),
        "draft_link": _version_link(version),
        "next_label": services.next_label(version),
        "notices": version_notices(version),
        "usage": usage_table(baseline.major) if baseline else "",
        "same_major": baseline is not None and baseline.major_id == version.major_id,
    }
    if version.shape is not None:
        changes = services.changes_between(baseline, version.shape)
        facts["diff"] = _changes_table(services.serialise_changes(changes))
        facts["compatibility"] = (
            str(services.classify(changes)) if changes else ("first version" if not baseline
                                                            else "no change")
        )  # fmt: skip
        facts["moved"] = baseline is not None and version.based_on_id not in (None, baseline.pk)
    if spec is None:
        return facts
    after = preview(spec, rules)
    before = preview(spec, services.rules_of(baseline)) if baseline else None
    facts["after_payload"] = json.dumps(after.get("payload"), indent=2, ensure_ascii=False)
    facts["after_bytes"] = after.get("payloadBytes")
    if before is not None and "payloadBytes" in before and "payloadBytes" in after:
        delta = after["payloadBytes"] - before["payloadBytes"]
        facts["before_payload"] = json.dumps(before["payload"], indent=2, ensure_ascii=False)
        facts["before_bytes"] = before["payloadBytes"]
        facts["size_delta"] = f"{delta:+d} bytes"
        facts["size_percent"] = f"{100 * delta / before['payloadBytes']:+.1f} %"
    facts["rules"] = [
        {
            "field": f"{rule.section}.{rule.source}",
            "output": rule.output_path,
            "type": services.json_type_of(spec, rule),
            "sensitivity": _sensitivity_of(spec, rule),
        }
        for rule in rules
    ]
    facts["internal"] = (
        services.internal_fields(spec, rules)
        if version.major.endpoint.client.name in services.EXTERNAL_CLIENTS
        else []
    )
    return facts


def _sensitivity_of(spec: EndpointSpec, rule: Rule) -> str:
    section = spec.section(rule.section)
    try:
        return sensitivity(section.source, rule.source) if section else ""
    except RuleError:
        return ""


class ProposeForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False)


class DeprecateForm(ProposeForm):
    sunset_at = forms.DateTimeField(
        label="Sunset (UTC)",
        help_text="After this moment the major answers 410.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


def lifecycle_context(model_admin, request, **facts) -> dict:
    pending = facts["pending"]
    user = request.user
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "can_confirm": pending is not None and pending.proposer_id != user.pk,
        "is_proposer": pending is not None and pending.proposer_id == user.pk,
        **facts,
    }


def lifecycle_post(model_admin, request, pending, propose) -> bool:
    """Handle propose / confirm / decline; True when done (the page then redirects)."""
    step = request.POST.get("step")
    comment = request.POST.get("comment", "")
    try:
        if step == "propose":
            propose(request.POST.get("reason", ""))
            model_admin.message_user(
                request,
                "Proposed. Another release manager must confirm it before clients see it.",
                messages.SUCCESS,
            )
        elif step in ("confirm", "decline") and pending is not None:
            action = services.ConfirmProposal if step == "confirm" else services.DeclineProposal
            done = action(request.user, pending, comment=comment).execute()
            model_admin.message_user(request, f"Proposal {done.status}.", messages.SUCCESS)
        else:
            return False
    except services.ActionError as exc:
        model_admin.message_user(request, f"Not done: {exc}", messages.ERROR)
    return True


@admin.register(ReviewQueue)
class ReviewQueueAdmin(admin.ModelAdmin):
    """Submitted versions waiting for a release manager."""

    list_display = [
        "endpoint_name",
        "proposed",
        "author",
        "submitted",
        "compatibility",
        "review_link",
    ]
    list_select_related = ["major__endpoint__client", "author"]
    ordering = ["submitted_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=Status.SUBMITTED)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return services.is_release_manager(request.user)

    def has_module_permission(self, request) -> bool:
        return services.is_release_manager(request.user)

    @admin.display(description="endpoint")
    def endpoint_name(self, obj) -> str:
        return str(obj.major.endpoint)

    @admin.display(description="proposed for")
    def proposed(self, obj) -> str:
        return obj.major.label

    @admin.display(description="submitted", ordering="submitted_at")
    def submitted(self, obj) -> str:
        return when(obj.submitted_at)

    @admin.display(description="changes")
    def compatibility(self, obj) -> str:
        kinds = {change["compatibility"] for change in obj.diff or []}
        if not kinds:
            return "first version"
        return "breaking (new major)" if "breaking" in kinds else "additive"

    @admin.display(description="")
    def review_link(self, obj) -> str:
        return format_html(
            '<a class="button" href="{}">Review</a>',
            reverse("admin:contracts_contractversion_review", args=[obj.pk]),
        )


@admin.register(LifecycleProposal)
class LifecycleProposalAdmin(RegistryAdmin):
    """Proposed retirements and deprecations, and who proposed and confirmed each."""

    client_lookup = "major__endpoint__client__name"
    list_display = ["__str__", "effect", "proposer", "reviewer", "created", "decision_link"]
    list_filter = ["status", "kind"]
    list_select_related = ["major__endpoint__client", "version", "proposer", "reviewer"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return services.is_release_manager(request.user)

    def has_module_permission(self, request) -> bool:
        return services.is_release_manager(request.user)

    @admin.display(description="proposed", ordering="created_at")
    def created(self, obj) -> str:
        return when(obj.created_at)

    @admin.display(description="")
    def decision_link(self, obj) -> str:
        if obj.kind == ProposalKind.RETIRE_VERSION:
            url = reverse("admin:contracts_contractversion_retire", args=[obj.version_id])
        else:
            url = reverse("admin:contracts_majorversion_deprecate", args=[obj.major_id])
        label = "Decide" if obj.status == ProposalStatus.PENDING else "View"
        return format_html('<a class="button" href="{}">{}</a>', url, label)


@admin.register(Client)
class ClientAdmin(RegistryAdmin):
    client_lookup = "name"
    list_display = ["name", "display_name"]

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


@admin.register(Endpoint)
class EndpointAdmin(RegistryAdmin):
    list_display = [
        "__str__",
        "cache_scope",
        "cache_ttl_seconds",
        "cache_jitter_percent",
        "cache_stale_grace_seconds",
        "versions_link",
    ]
    list_filter = [("client", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["client", "name", "versions_and_traffic"]
    fields = [
        "client",
        "name",
        "description",
        "cache_scope",
        "cache_ttl_seconds",
        "cache_jitter_percent",
        "cache_stale_grace_seconds",
        "versions_and_traffic",
    ]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.bump_generation()

    @admin.display(description="versions")
    def versions_link(self, obj: Endpoint) -> str:
        url = reverse("admin:contracts_contractversion_changelist")
        return format_html('<a href="{}?major__endpoint__id__exact={}">{}</a>', url, obj.pk,
                           "versions")  # fmt: skip

    @admin.display(description="versions and traffic")
    def versions_and_traffic(self, obj: Endpoint) -> str:
        if obj.pk is None:
            return "-"
        parts = [
            format_html('<p><a href="{}?major__endpoint__id__exact={}" id="endpoint-versions">{}'
                        "</a></p>", reverse("admin:contracts_contractversion_changelist"),
                        obj.pk, "All versions of this endpoint")
        ]  # fmt: skip
        for major in obj.majors.exclude(number=None).order_by("number"):
            versions = major.versions.filter(status__in=(Status.APPROVED, Status.RETIRED))
            links = format_html_join(
                ", ",
                "{}{}",
                (
                    (_version_link(v), " (live)" if _is_live(v) else f" ({v.status})")
                    for v in versions.order_by("minor")
                ),
            )
            parts.append(
                format_html(
                    '<h3><a href="{}">{}</a>{}</h3><p>{}</p>{}',
                    reverse("admin:contracts_majorversion_change", args=[major.pk]),
                    major.label,
                    f", sunset {when(major.sunset_at)}" if major.sunset_at else "",
                    links,
                    usage_table(major),
                )
            )
        return format_html_join("", "{}", ((part,) for part in parts))


@admin.register(MajorVersion)
class MajorVersionAdmin(RegistryAdmin):
    client_lookup = "endpoint__client__name"
    list_display = ["__str__", "deprecated", "sunset"]
    list_filter = [("endpoint__client", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["endpoint", "number", "deprecated_at", "sunset_at", "traffic"]
    change_form_template = "admin/contracts/majorversion/change_form.html"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # every field is read-only: lifecycle changes are proposals

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(number=None)

    @admin.display(description="deprecated", ordering="deprecated_at")
    def deprecated(self, obj) -> str:
        return when(obj.deprecated_at)

    @admin.display(description="sunset", ordering="sunset_at")
    def sunset(self, obj) -> str:
        return when(obj.sunset_at)

    @admin.display(description="traffic")
    def traffic(self, obj) -> str:
        return usage_table(obj)

    def get_urls(self):
        own = [
            path(
                "<int:pk>/deprecate/",
                self.admin_site.admin_view(self.deprecate_view),
                name="contracts_majorversion_deprecate",
            )
        ]
        return own + super().get_urls()

    def deprecate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        major = get_object_or_404(self.get_queryset(request), pk=pk)
        if not services.is_release_manager(request.user):
            raise PermissionDenied("Only release managers deprecate major versions.")
        pending = LifecycleProposal.objects.filter(
            major=major, kind=ProposalKind.DEPRECATE_MAJOR, status=ProposalStatus.PENDING
        ).first()
        form = DeprecateForm(request.POST if request.POST.get("step") == "propose" else None)

        def propose(reason: str):
            if not form.is_valid():
                raise services.ActionError("give a valid sunset date and time")
            return services.ProposeDeprecation(
                request.user, major, sunset_at=form.cleaned_data["sunset_at"], reason=reason
            ).execute()

        if request.method == "POST" and lifecycle_post(self, request, pending, propose):
            return HttpResponseRedirect(request.path)
        total, _ = services.major_usage(major)
        effect = pending.effect if pending else (
            f"{major.label} responses will carry Deprecation and Sunset headers; after the "
            "sunset its URLs answer 410 (the exact effect is shown once proposed)"
        )  # fmt: skip
        context = lifecycle_context(
            self, request, title=f"Deprecate {major}", subject=major.label, effect=effect,
            usage=usage_table(major), warning=_in_use_warning(total, major.label),
            pending=pending, can_propose=pending is None, form=form,
            proposals=major.proposals.filter(kind=ProposalKind.DEPRECATE_MAJOR),
            propose_label="Propose deprecation",
            back=reverse("admin:contracts_majorversion_change", args=[pk]),
        )  # fmt: skip
        return TemplateResponse(request, "admin/contracts/lifecycle.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        extra["can_deprecate"] = services.is_release_manager(request.user)
        return super().change_view(request, object_id, form_url, extra_context=extra)

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
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from contracts import services
from contracts.models import (
    Client,
    ContractVersion,
    Endpoint,
    FieldRule,
    MajorVersion,
    ReviewQueue,
    Status,
)
from contracts.paths import RuleError, leaf_paths, parse
from contracts.preview import preview
from contracts.remaps import compatible_sources
from contracts.schema import EndpointSpec, Rule

admin.site.site_header = "BFF contract registry"
admin.site.site_title = "BFF contract registry"
admin.site.index_title = "Contracts, reviews and history"
admin.site.site_url = None  # the BFF has no HTML site to link back to


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


def field_choices(spec: EndpointSpec) -> list:
    """The field picker's options: exactly the fields the code's source schemas declare."""
    return [
        (
            section.name,
            [
                (f"{section.name}:{p}", f"{section.name}.{p} ({t})")
                for p, t in leaf_paths(section.source)
            ],
        )
        for section in spec.sections
    ]


def remap_options(version: ContractVersion, spec: EndpointSpec) -> dict[tuple[str, str], list]:
    """For each rule of a draft: the declared fields that can feed its output unchanged
    for clients (a remap), judged against the approved version the draft replaces."""
    baseline = services.baseline_for(version)
    if baseline is None or baseline.shape is None:
        return {}
    rules = services.rules_of(version)
    valid = []  # the rules this code can apply, in order: the context of each remap
    for rule in rules:
        if _applies(spec, [*valid, rule]):
            valid.append(rule)
    options = {}
    for rule in rules:
        others = [other for other in valid if other != rule]
        paths = compatible_sources(spec, others, rule, baseline.shape)
        labels = dict(leaf_paths(spec.section(rule.section).source)) if paths else {}
        options[(rule.section, rule.source)] = [
            (f"{rule.section}:{p}", f"{rule.section}.{p} ({labels[p]}) → keeps {rule.output_path}")
            for p in paths
        ]
    return options


def _applies(spec: EndpointSpec, rules: list[Rule]) -> bool:
    try:
        services.code_shape_for(spec, rules)
    except services.ActionError:
        return False
    return True


class FieldRuleForm(forms.ModelForm):
    field = forms.ChoiceField(label="Field", help_text="Only fields the source declares.")

    class Meta:
        model = FieldRule
        fields = ["output_name", "position"]

    spec: EndpointSpec | None = None
    remaps: dict[tuple[str, str], list] = {}  # set per formset (get_formset), never mutated

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "output_name" not in self.fields:  # the read-only view of a frozen version
            return
        self.fields["field"].choices = [("", "---------")] + (
            field_choices(self.spec) if self.spec else []
        )
        self._remap_to: set[str] = set()
        if self.instance.pk:
            self.fields["field"].initial = f"{self.instance.section}:{self.instance.source_path}"
            if self.instance.output_name == self.instance.source_path:
                self.initial["output_name"] = ""
            options = self.remaps.get((self.instance.section, self.instance.source_path), [])
            if options:
                self._remap_to = {value for value, _ in options}
                self._keeps = self.instance.output_name
                group = f"Remap: fields that can feed {self.instance.output_name} unchanged"
                self.fields["field"].choices = [
                    self.fields["field"].choices[0],
                    (group, options),
                    *self.fields["field"].choices[1:],
                ]
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
        if choice in self._remap_to and not data.get("output_name"):
            data["output_name"] = self._keeps  # a remap keeps the output clients read
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
        remaps = remap_options(obj, spec) if spec and self._editable(request, obj) else {}
        kwargs["form"] = type(
            "BoundFieldRuleForm", (FieldRuleForm,), {"spec": spec, "remaps": remaps}
        )
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
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


def _changes_table(changes: list[dict] | None) -> str:
    if not changes:
        return format_html("<p>{}</p>", "No changes against the version it replaces.")
    rows = format_html_join(
        "",
        '<tr class="change-{} kind-{}"><td><strong>{}</strong></td><td><code>{}</code></td>'
        '<td>{}</td><td>{}</td><td><code title="{}">{}</code></td></tr>',
        (
            (
                c["compatibility"],
                c["kind"],
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


@admin.register(ContractVersion)
class ContractVersionAdmin(RegistryAdmin):
    client_lookup = "major__endpoint__client__name"
    inlines = [FieldRuleInline]
    list_display = [
        "endpoint_name",
        "version_label",
        "status",
        "author",
        "approver",
        "submitted_at",
        "reviewed_at",
    ]
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
        if obj is None or obj.status != Status.DRAFT:
            return False
        return services.can_edit_client(request.user, obj.major.endpoint.client.name) and (
            super().has_delete_permission(request, obj) or obj.author_id == request.user.pk
        )

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
        return obj.label

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
        baseline = services.baseline_for(obj) if obj.status != Status.APPROVED else obj.based_on
        against = f"against {baseline.label}" if baseline else "first version"
        return format_html("<p>{}</p>{}", against, _changes_table(obj.diff))

    @admin.display(description="audit trail")
    def audit_trail(self, obj: ContractVersion) -> str:
        entries = []
        for record in obj.history.select_related("history_user").order_by("history_date"):
            entries.append(
                (
                    record.history_date,
                    record.history_user,
                    f"version {record.get_history_type_display().lower()}: status {record.status}",
                )
            )
        for record in FieldRule.history.filter(version_id=obj.pk).select_related("history_user"):
            action = {"+": "added", "~": "changed", "-": "removed"}[record.history_type]
            entries.append(
                (
                    record.history_date,
                    record.history_user,
                    f"rule {action}: {record.section}.{record.source_path} → {record.output_name}",
                )
            )
        entries.sort(key=lambda entry: entry[0])
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (timezone.localtime(when).strftime("%Y-%m-%d %H:%M:%S"), who or "-", what)
                for when, who, what in entries
            ),
        )
        return format_html('<table class="audit"><tbody>{}</tbody></table>', rows)

    # -- workflow views

    def get_urls(self):
        own = [
            path(
                "<int:pk>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="contracts_contractversion_preview",
            ),
            path(
                "<int:pk>/submit/",
                self.admin_site.admin_view(self.submit_view),
                name="contracts_contractversion_submit",
            ),
            path(
                "<int:pk>/review/",
                self.admin_site.admin_view(self.review_view),
                name="contracts_contractversion_review",
            ),
            path(
                "<int:pk>/new-draft/",
                self.admin_site.admin_view(self.new_draft_view),
                name="contracts_contractversion_new_draft",
            ),
            path(
                "<int:pk>/retire/",
                self.admin_site.admin_view(self.retire_view),
                name="contracts_contractversion_retire",
            ),
        ]
        return own + super().get_urls()

    def _visible(self, request, pk: int) -> ContractVersion:
        return get_object_or_404(self.get_queryset(request), pk=pk)

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

    def submit_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self._visible(request, pk)
        if request.method != "POST":
            return HttpResponseRedirect(
                reverse("admin:contracts_contractversion_change", args=[pk])
            )
        try:
            services.SubmitForReview(request.user, version).execute()
        except services.ActionError as exc:
            self.message_user(request, f"Not submitted: {exc}", messages.ERROR)
        else:
            self.message_user(
                request, f"{version.major.endpoint} draft submitted for review.", messages.SUCCESS
            )
        return HttpResponseRedirect(reverse("admin:contracts_contractversion_change", args=[pk]))

    def review_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self._visible(request, pk)
        if not services.is_release_manager(request.user):
            raise PermissionDenied
        form = ReviewForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            decision = form.cleaned_data["decision"]
            comment = form.cleaned_data["comment"]
            try:
                if decision == "approve":
                    done = services.Approve(request.user, version, comment=comment).execute()
                    self.message_user(
                        request,
                        f"Approved as {done.label}; serving within a second.",
                        messages.SUCCESS,
                    )
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
            "diff": self.classified_diff(version),
            "rules": services.rules_of(version),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/contracts/contractversion/review.html", context)

    def new_draft_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self._visible(request, pk)
        if request.method != "POST":
            return HttpResponseRedirect(
                reverse("admin:contracts_contractversion_change", args=[pk])
            )
        try:
            draft = services.CreateDraft(
                request.user,
                version.major.endpoint,
                from_version=version,
                new_major=request.POST.get("new_major") == "1",
            ).execute()
        except services.ActionError as exc:
            self.message_user(request, f"No draft created: {exc}", messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:contracts_contractversion_change", args=[pk])
            )
        self.message_user(request, f"Draft created from {version.label}.", messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:contracts_contractversion_change", args=[draft.pk])
        )

    def retire_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self._visible(request, pk)
        if request.method == "POST":
            try:
                services.Retire(request.user, version).execute()
            except services.ActionError as exc:
                self.message_user(request, f"Not retired: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{version} retired.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:contracts_contractversion_change", args=[pk]))

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
                return HttpResponseRedirect(
                    reverse("admin:contracts_contractversion_change", args=[draft.pk])
                )
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
            extra.update(
                can_submit=version.status == Status.DRAFT
                and services.can_edit_client(request.user, version.major.endpoint.client.name),
                can_review=version.status == Status.SUBMITTED
                and services.is_release_manager(request.user),
                can_draft_from=version.status in (Status.APPROVED, Status.RETIRED, Status.REJECTED)
                and services.can_edit_client(request.user, version.major.endpoint.client.name),
                can_retire=version.status == Status.APPROVED
                and services.is_release_manager(request.user),
                version=version,
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


@admin.register(ReviewQueue)
class ReviewQueueAdmin(admin.ModelAdmin):
    """Submitted versions waiting for a release manager."""

    list_display = [
        "endpoint_name",
        "proposed",
        "author",
        "submitted_at",
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
        return f"v{obj.major.number}"

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
    ]
    list_filter = [("client", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["client", "name"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.bump_generation()


class DeprecateForm(forms.Form):
    sunset_at = forms.DateTimeField(
        help_text="After this moment the major answers 410.",
        widget=forms.DateTimeInput(attrs={"form": "deprecate"}),
    )


@admin.register(MajorVersion)
class MajorVersionAdmin(RegistryAdmin):
    client_lookup = "endpoint__client__name"
    list_display = ["__str__", "deprecated_at", "sunset_at"]
    list_filter = [("endpoint__client", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["endpoint", "number", "deprecated_at", "sunset_at"]
    change_form_template = "admin/contracts/majorversion/change_form.html"

    def has_add_permission(self, request) -> bool:
        return False

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
            raise PermissionDenied
        form = DeprecateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.DeprecateMajor(
                    request.user, major, sunset_at=form.cleaned_data["sunset_at"]
                ).execute()
            except services.ActionError as exc:
                self.message_user(request, f"Not deprecated: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{major} deprecated.", messages.SUCCESS)
        elif request.method == "POST":
            self.message_user(request, "Give a valid sunset date and time.", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:contracts_majorversion_change", args=[pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        extra["can_deprecate"] = services.is_release_manager(request.user)
        extra["deprecate_form"] = DeprecateForm()
        return super().change_view(request, object_id, form_url, extra_context=extra)


from contracts.api import admin as registry_api_admin  # noqa: E402, F401 - registers its pages

"""Contract versions: drafts and their rules, the review queue, lifecycle proposals."""

from __future__ import annotations

import json

import orjson
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from contract_core.schema import Rule
from contracts import services
from contracts.admin.base import RegistryAdmin, ReleaseManagerListMixin, spec_of
from contracts.admin.forms import (
    FieldRuleForm,
    FieldRuleFormSet,
    NewDraftForm,
    ReviewForm,
    remap_options,
)
from contracts.admin.panels import (
    changes_table,
    in_use_warning,
    is_live,
    usage_table,
    version_link,
    when,
)
from contracts.admin.workflow import (
    lifecycle_context,
    lifecycle_post,
    review_facts,
    version_notices,
)
from contracts.models import (
    WORKFLOW,
    ContractVersion,
    Endpoint,
    FieldRule,
    LifecycleProposal,
    ProposalKind,
    ProposalStatus,
    Status,
)
from contracts.preview import preview
from contracts.usage import Usage


class FieldRuleInline(admin.TabularInline):
    model = FieldRule
    form = FieldRuleForm
    formset = FieldRuleFormSet
    extra = 0
    fields = ["field", "output_name", "position", "json_type"]
    readonly_fields = ["json_type"]
    ordering = ["section", "position", "id"]

    def get_formset(self, request, obj=None, **kwargs):
        spec = spec_of(obj) if obj else None
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
        if is_live(obj):
            return format_html(
                '{} <span class="live-marker" title="{}">live</span>',
                obj.label,
                "the version its major serves",
            )
        return obj.label

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, obj: ContractVersion) -> str:
        return when(obj.updated_at)

    def live_preview(self, obj: ContractVersion) -> str:
        """The draft's preview panel; preview.js refreshes it as the rules are edited."""
        spec = spec_of(obj)
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
            changes_table(data.get("changes")),
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
        return format_html("<p>{}</p>{}", against, changes_table(changes))

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
        spec = spec_of(version)
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
                        request,
                        "Changes requested; the draft is back with its team.",
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
        pending = LifecycleProposal.objects.pending(
            ProposalKind.RETIRE_VERSION, version=version
        ).first()

        def propose(reason: str):
            return services.ProposeRetirement(request.user, version, reason=reason).execute()

        if request.method == "POST" and lifecycle_post(self, request, pending, propose):
            return HttpResponseRedirect(request.path)
        major = version.major
        _, per_minor = services.major_usage(major)
        warning = in_use_warning(per_minor.get(version.minor, Usage()), version.label)
        effect = services.retirement_effect(version) if version.status == Status.APPROVED else ""
        context = lifecycle_context(
            self,
            request,
            title=f"Retire {version}",
            subject=version_link(version),
            effect=effect,
            usage=usage_table(major, highlight=version.minor),
            warning=warning,
            pending=pending,
            can_propose=version.status == Status.APPROVED and pending is None,
            proposals=LifecycleProposal.objects.filter(version=version),
            propose_label="Propose retiring this version",
            form=None,
            back=reverse("admin:contracts_contractversion_change", args=[pk]),
        )
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
                is_live=is_live(version),
                notices=version_notices(version),
                preview_panel=self.live_preview(version) if version.status == Status.DRAFT else "",
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        spec = spec_of(form.instance)
        for removed in formset.deleted_objects:
            removed.delete()
        for rule in instances:
            if spec is not None:
                rule.json_type = services.json_type_of(spec, Rule(rule.section, rule.source_path))
            rule.save()


class ReviewQueueAdmin(ReleaseManagerListMixin, admin.ModelAdmin):
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


class LifecycleProposalAdmin(ReleaseManagerListMixin, RegistryAdmin):
    """Proposed retirements and deprecations, and who proposed and confirmed each."""

    client_lookup = "major__endpoint__client__name"
    list_display = ["__str__", "effect", "proposer", "reviewer", "created", "decision_link"]
    list_filter = ["status", "kind"]
    list_select_related = ["major__endpoint__client", "version", "proposer", "reviewer"]

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

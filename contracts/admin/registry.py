"""Clients, endpoints and majors in the admin."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from contracts import services
from contracts.admin.base import RegistryAdmin
from contracts.admin.forms import DeprecateForm
from contracts.admin.panels import in_use_warning, is_live, usage_table, version_link, when
from contracts.admin.workflow import lifecycle_context, lifecycle_post
from contracts.models import (
    Endpoint,
    LifecycleProposal,
    ProposalKind,
    Status,
)


class ClientAdmin(RegistryAdmin):
    client_lookup = "name"
    list_display = ["name", "display_name"]

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


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
        return format_html(
            '<a href="{}?major__endpoint__id__exact={}">{}</a>', url, obj.pk, "versions"
        )

    @admin.display(description="versions and traffic")
    def versions_and_traffic(self, obj: Endpoint) -> str:
        if obj.pk is None:
            return "-"
        parts = [
            format_html(
                '<p><a href="{}?major__endpoint__id__exact={}" id="endpoint-versions">{}</a></p>',
                reverse("admin:contracts_contractversion_changelist"),
                obj.pk,
                "All versions of this endpoint",
            )
        ]
        for major in obj.majors.exclude(number=None).order_by("number"):
            versions = major.versions.filter(status__in=(Status.APPROVED, Status.RETIRED))
            links = format_html_join(
                ", ",
                "{}{}",
                (
                    (version_link(v), " (live)" if is_live(v) else f" ({v.status})")
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
        pending = LifecycleProposal.objects.pending(
            ProposalKind.DEPRECATE_MAJOR, major=major
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
        if pending:
            effect = pending.effect
        else:
            effect = (
                f"{major.label} responses will carry Deprecation and Sunset headers; after the "
                "sunset its URLs answer 410 (the exact effect is shown once proposed)"
            )
        context = lifecycle_context(
            self,
            request,
            title=f"Deprecate {major}",
            subject=major.label,
            effect=effect,
            usage=usage_table(major),
            warning=in_use_warning(total, major.label),
            pending=pending,
            can_propose=pending is None,
            form=form,
            proposals=major.proposals.filter(kind=ProposalKind.DEPRECATE_MAJOR),
            propose_label="Propose deprecation",
            back=reverse("admin:contracts_majorversion_change", args=[pk]),
        )
        return TemplateResponse(request, "admin/contracts/lifecycle.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        extra["can_deprecate"] = services.is_release_manager(request.user)
        return super().change_view(request, object_id, form_url, extra_context=extra)

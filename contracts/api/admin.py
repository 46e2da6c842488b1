"""The admin of the registry API: tokens (shown once, revocable), webhooks, deliveries."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from contracts.api import tokens
from contracts.api.models import ApiToken, Scope, Webhook, WebhookDelivery, WebhookEvent


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiToken
        fields = ["name", "user", "scopes", "client", "expires_at", "rate"]

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now() and self.instance.pk is None:
            raise forms.ValidationError("The expiry must be in the future.")
        return expires_at

    def clean_rate(self):
        from bff_project.config import ConfigError, get_rate

        rate = self.cleaned_data.get("rate", "").strip()
        if rate:
            try:
                get_rate({"rate": rate}, "rate", default=rate)
            except ConfigError:
                raise forms.ValidationError("Use DRF's form, e.g. 60/min.") from None
        return rate


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = [
        "name",
        "prefix",
        "user",
        "scope_list",
        "client",
        "state",
        "expires_at",
        "last_used_at",
    ]
    list_filter = ["client"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke_tokens"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "user"] if obj is not None else fields

    @admin.display(description="scopes")
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(token.scopes)

    @admin.display(description="state")
    def state(self, token: ApiToken) -> str:
        if token.revoked_at is not None:
            return "revoked"
        return "usable" if token.is_usable else "expired"

    def save_model(self, request, obj: ApiToken, form, change: bool) -> None:
        if change:
            obj.scopes = tokens.parse_scopes(form.cleaned_data["scopes"])
            super().save_model(request, obj, form, change)
            return
        secret = ApiToken.new_secret()
        obj.set_secret(secret)
        obj.scopes = tokens.parse_scopes(form.cleaned_data["scopes"])
        obj.created_by = request.user
        super().save_model(request, obj, form, change)
        # Kept on the request only, to be shown once by response_add; never stored.
        request._registry_token_secret = secret

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue=None):
        secret = getattr(request, "_registry_token_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "token": obj,
            "secret": secret,
            "title": "Copy the new token",
            "opts": self.opts,
        }
        response = TemplateResponse(request, "admin/contracts/apitoken/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected tokens")
    def revoke_tokens(self, request: HttpRequest, queryset) -> HttpResponse | None:
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            tokens.revoke(token)
            count += 1
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
        return None


class WebhookForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every event.",
    )

    class Meta:
        model = Webhook
        fields = ["name", "url", "secret", "events", "client", "active", "max_attempts"]
        widgets = {"secret": forms.PasswordInput(render_value=True)}

    def clean_max_attempts(self):
        value = self.cleaned_data["max_attempts"]
        if not 1 <= value <= 10:
            raise forms.ValidationError("Between 1 and 10 attempts.")
        return value


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ["created_at", "event", "status", "attempts", "response_status", "last_error"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-created_at"]
    show_change_link = True


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ["name", "url", "event_list", "client", "active"]
    inlines = [DeliveryInline]

    @admin.display(description="events")
    def event_list(self, webhook: Webhook) -> str:
        return ", ".join(webhook.events) or "all"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: read-only."""

    list_display = ["created_at", "webhook", "event", "status", "attempts", "response_status"]
    list_filter = ["status", "event", "webhook"]
    readonly_fields = [
        "webhook",
        "event",
        "payload",
        "status",
        "attempts",
        "response_status",
        "last_error",
        "created_at",
        "finished_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

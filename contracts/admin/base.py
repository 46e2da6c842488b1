"""The base of the registry's admins: per-client rows, read-only history."""

from __future__ import annotations

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from contract_core.schema import EndpointSpec
from contracts import services
from contracts.models import (
    ContractVersion,
)


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


def spec_of(version: ContractVersion) -> EndpointSpec | None:
    try:
        return services.spec_for(version.major.endpoint)
    except services.ActionError:
        return None


class ReleaseManagerListMixin:
    """A list only release managers see and nobody edits here: the review queue and the
    lifecycle proposals, each acted on through its own workflow page."""

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

"""The registry admin's forms: the field picker and the workflow forms."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from contract_core.paths import RuleError, leaf_paths, parse, sensitivity
from contract_core.remaps import compatible_sources
from contract_core.schema import INTERNAL, PERSONAL, EndpointSpec, Rule
from contracts import services
from contracts.models import (
    ContractVersion,
    Endpoint,
    FieldRule,
)

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


class ProposeForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False)


class DeprecateForm(ProposeForm):
    sunset_at = forms.DateTimeField(
        label="Sunset (UTC)",
        help_text="After this moment the major answers 410.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

"""Forms of the staff pages.  They check shape only; the transition functions
in exporter.fulfillment decide what is allowed."""

from django import forms

from discsub import query
from exporter.carriers import CARRIER_CHOICES
from exporter.media import Medium
from exporter.models import ReadBackCheck

from .queue import AGES

_drive = {"placeholder": "e.g. Drive A", "autocomplete": "on"}
_batch = {"placeholder": "e.g. Verbatim 2411-B", "autocomplete": "on"}


class FilterForm(forms.Form):
    medium = forms.ChoiceField(choices=[("", "All media"), *Medium.choices], required=False)
    age = forms.ChoiceField(choices=AGES, required=False)
    mine = forms.BooleanField(required=False, label="Only my claims")


class ClaimForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=100, initial=10, label="How many")
    medium = forms.ChoiceField(choices=[("", "Any medium"), *Medium.choices], required=False)
    drive = forms.CharField(max_length=64, required=False, widget=forms.TextInput(attrs=_drive))


class CopiesForm(forms.Form):
    """A selection of copies for a batch action."""

    copies = forms.TypedMultipleChoiceField(
        coerce=int, choices=(), error_messages={"required": "Select some copies first."}
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any id is a valid choice here: the transition functions refuse what does not exist or may not move.
        values = self.data.getlist("copies") if hasattr(self.data, "getlist") else []
        self.fields["copies"].choices = [(v, v) for v in values if query.number(str(v)) is not None]


class BurnedForm(forms.Form):
    drive = forms.CharField(max_length=64, widget=forms.TextInput(attrs=_drive))
    media_batch = forms.CharField(max_length=64, label="Media batch", widget=forms.TextInput(attrs=_batch))


class NoteForm(forms.Form):
    note = forms.CharField(
        max_length=500, required=False, widget=forms.TextInput(attrs={"placeholder": "What happened (optional)"})
    )


class ReadBackForm(forms.Form):
    method = forms.ChoiceField(
        choices=ReadBackCheck.Method.choices, widget=forms.RadioSelect, initial=ReadBackCheck.Method.CHECKISOMD5
    )
    value = forms.CharField(
        label="Result",
        max_length=4000,
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "placeholder": "Paste checkisomd5 --verbose output (or PASS / FAIL), or the sha256 of the disc",
            }
        ),
    )
    drive = forms.CharField(max_length=64, widget=forms.TextInput(attrs=_drive))
    media_batch = forms.CharField(max_length=64, label="Media batch", widget=forms.TextInput(attrs=_batch))


class ShipForm(CopiesForm):
    carrier = forms.ChoiceField(choices=CARRIER_CHOICES)
    tracking_number = forms.CharField(max_length=80, label="Tracking number")

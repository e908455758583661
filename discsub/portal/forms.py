"""The portal's forms.  They check input; the engine functions make the changes."""

from __future__ import annotations

from django import forms
from django.template.defaultfilters import filesizeformat

from exporter.countries import COUNTRIES
from exporter.media import Medium, capacity_bytes
from exporter.models import Album, Cadence, CopyStatus, Subscription

COUNTRY_CHOICES = [("", "Choose a country")] + sorted(COUNTRIES.items(), key=lambda kv: kv[1])


class AlbumChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, album: Album) -> str:
        return " / ".join(album.path())


def album_choices(user):
    # The path of each album comes from the parents already loaded (no query per album).
    albums = list(Album.objects.filter(owner=user).order_by("name", "pk"))
    by_pk = {a.pk: a for a in albums}
    for album in albums:
        album.parent = by_pk.get(album.parent_id)
    return sorted(albums, key=lambda a: [n.casefold() for n in a.path()])


class AlbumForm(forms.Form):
    name = forms.CharField(label="Album name", max_length=200, strip=True)
    parent = forms.ChoiceField(label="Inside", required=False)

    def __init__(self, user, *args, albums: list[Album] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.albums = album_choices(user) if albums is None else albums
        self.fields["parent"].choices = [("", "Top level")] + [
            (str(a.public_id), " / ".join(a.path())) for a in self.albums
        ]

    def clean_name(self):
        name = self.cleaned_data["name"]
        if any(ord(c) < 32 for c in name):
            raise forms.ValidationError("Album names cannot hold control characters.")
        return name

    def parent_album(self) -> Album | None:
        wanted = self.cleaned_data.get("parent")
        return next((a for a in self.albums if str(a.public_id) == wanted), None)


class ItemEditForm(forms.Form):
    title = forms.CharField(label="Title", max_length=1024, required=False)
    caption = forms.CharField(label="Caption", required=False, widget=forms.Textarea(attrs={"rows": 3}))


class MoveForm(forms.Form):
    albums = forms.MultipleChoiceField(
        label="Albums", required=False, widget=forms.CheckboxSelectMultiple, help_text="None: not in any album."
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.all_albums = album_choices(user)
        self.fields["albums"].choices = [(str(a.public_id), " / ".join(a.path())) for a in self.all_albums]

    def chosen(self) -> list[Album]:
        wanted = set(self.cleaned_data["albums"])
        return [a for a in self.all_albums if str(a.public_id) in wanted]


MEDIUM_CHOICES = [(m.value, f"{m.label} · holds {filesizeformat(capacity_bytes(m))}") for m in Medium]


class PlanForm(forms.Form):
    medium = forms.ChoiceField(label="Disc type", choices=MEDIUM_CHOICES)
    cadence = forms.ChoiceField(label="How often", choices=Cadence.choices)


class AddressForm(forms.Form):
    name = forms.CharField(label="Full name", max_length=200, required=False)
    line1 = forms.CharField(label="Address line 1", max_length=200, required=False)
    line2 = forms.CharField(label="Address line 2 (optional)", max_length=200, required=False)
    city = forms.CharField(label="Town or city", max_length=100, required=False)
    region = forms.CharField(label="State, county or region (optional)", max_length=100, required=False)
    postal_code = forms.CharField(label="Postal code", max_length=20, required=False)
    country = forms.ChoiceField(label="Country", choices=COUNTRY_CHOICES, required=False)

    autocomplete = {
        "name": "name",
        "line1": "address-line1",
        "line2": "address-line2",
        "city": "address-level2",
        "region": "address-level1",
        "postal_code": "postal-code",
        "country": "country",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, hint in self.autocomplete.items():
            self.fields[name].widget.attrs["autocomplete"] = hint

    @classmethod
    def for_subscription(cls, subscription: Subscription) -> AddressForm:
        return cls(initial=subscription.address())


class EmailPreferencesForm(forms.Form):
    on_shipped = forms.BooleanField(label="Email me when a disc ships, with its tracking number", required=False)
    on_delivered = forms.BooleanField(label="Email me when a disc is delivered or comes back to us", required=False)


class ReportForm(forms.Form):
    problem = forms.ChoiceField(
        label="What happened?",
        choices=[(CopyStatus.LOST, "It never arrived (lost)"), (CopyStatus.DAMAGED, "It arrived damaged")],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        label="Anything we should know? (optional)",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

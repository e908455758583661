from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from exporter.models import Change, Disc, Resolution


@login_required
def home(request):
    discs = Disc.objects.filter(owner=request.user).order_by("-number")
    pending = Change.objects.filter(owner=request.user, resolution=Resolution.PENDING).count()
    return render(request, "portal/home.html", {"discs": discs, "pending": pending})

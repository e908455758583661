"""Photo-like JPEGs for the demo data, made in a few milliseconds each."""

import datetime as dt
import io
import random

from PIL import Image

SIZES = [(1600, 1200), (1200, 1600), (2000, 1500), (800, 600), (2400, 1600)]


def demo_jpeg(rng: random.Random, when: dt.datetime, sizes=SIZES) -> bytes:
    """A photo-like JPEG taken at ``when`` (EXIF), of one of ``sizes``."""
    width, height = rng.choice(sizes)
    # A smooth gradient with noise: compresses like a photo, takes no time to draw.
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.frombytes("RGB", (width // 4, height // 4), rng.randbytes(width // 4 * height // 4 * 3))
    tint = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
    img = Image.blend(Image.blend(base, tint, 0.5), noise.resize((width, height)), 0.35)
    exif = Image.Exif()
    exif[0x0110] = "Discsub DemoCam"
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")
    sub[0x9011] = "+01:00"
    out = io.BytesIO()
    img.save(out, "JPEG", quality=rng.choice([85, 92, 95]), exif=exif)
    return out.getvalue()

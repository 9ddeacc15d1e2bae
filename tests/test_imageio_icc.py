"""Embedded ICC profiles: non-sRGB images are converted to sRGB before coding (gqcodec/imageio.py)."""
import io
import struct

import numpy as np
import pytest
from PIL import Image

from gqcodec.imageio import normalize, open_image

ImageCms = pytest.importorskip("PIL.ImageCms")

# sRGB's primaries adapted to D50, the ICC connection space's white
R, G, B = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)


def _s15(x):
    return struct.pack(">i", round(x * 65536))


def rgb_profile(r, g, b, gamma=2.2, desc="test profile"):
    """A minimal ICC v2 matrix/TRC display profile (header, tag table, desc/wtpt/XYZ/curv tags)."""
    def xyz(v):
        return b"XYZ " + b"\0" * 4 + b"".join(_s15(c) for c in v)

    curv = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256))
    text = desc.encode() + b"\0"
    desc_tag = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * (4 + 4 + 3 + 67)
    tags = [(b"desc", desc_tag), (b"wtpt", xyz((0.9642, 1.0, 0.8249))), (b"rXYZ", xyz(r)), (b"gXYZ", xyz(g)),
            (b"bXYZ", xyz(b)), (b"rTRC", curv), (b"gTRC", curv), (b"bTRC", curv)]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    head = struct.pack(">I", offset + len(data)) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
    head += b"\0" * 12 + b"acsp"
    head += b"\0" * (68 - len(head)) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    head += b"\0" * (128 - len(head))
    return head + struct.pack(">I", len(tags)) + table + data


def tagged_png(pixel, icc, mode="RGB"):
    im = Image.fromarray(np.full((6, 5, len(pixel)), pixel, np.uint8), mode)
    buf = io.BytesIO()
    im.save(buf, "PNG", icc_profile=icc)
    return buf.getvalue()


def test_wide_gamut_profile_is_converted_to_srgb():
    swapped = rgb_profile(G, R, B, desc="red and green swapped")  # this file's "red" channel is sRGB's green
    src = open_image(tagged_png((200, 30, 30), swapped))
    assert src.info.get("icc_profile") == swapped
    arr, color = normalize(src)
    r, g, b = arr[0, 0].astype(int)
    assert color == "RGB" and arr.shape == (6, 5, 3)
    assert g > 150 and r < 80 and b < 80, (r, g, b)
    # the same pixels untagged are coded as they are
    plain = normalize(open_image(tagged_png((200, 30, 30), None)))[0]
    assert tuple(plain[0, 0]) == (200, 30, 30)


def test_gamma_of_the_profile_is_applied():
    linear = rgb_profile(R, G, B, gamma=1.0, desc="linear light")
    arr = normalize(open_image(tagged_png((64, 64, 64), linear)))[0]
    # linear 64/255 is sRGB-encoded ~137: brighter, still neutral
    assert 125 < arr[0, 0, 0] < 150 and len(set(arr[0, 0].tolist())) == 1


def test_srgb_gray_unreadable_and_mismatched_profiles_leave_pixels_alone():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert tuple(normalize(open_image(tagged_png((200, 30, 30), srgb)))[0][0, 0]) == (200, 30, 30)
    im = Image.fromarray(np.full((4, 4, 3), (200, 30, 30), np.uint8))
    im.info["icc_profile"] = b"not a profile" * 20
    assert tuple(normalize(im)[0][0, 0]) == (200, 30, 30)
    gray = Image.fromarray(np.full((4, 4), 90, np.uint8), "L")
    gray.info["icc_profile"] = rgb_profile(G, R, B)
    arr, color = normalize(gray)
    assert color == "L" and arr[0, 0] == 90
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # an RGB profile on a CMYK image: ignored
    cmyk.info["icc_profile"] = rgb_profile(R, G, B)
    assert tuple(normalize(cmyk)[0][0, 0]) == tuple(np.asarray(cmyk.convert("RGB"))[0, 0])


def test_alpha_survives_the_conversion_and_is_then_flattened():
    swapped = rgb_profile(G, R, B)
    arr, color = normalize(open_image(tagged_png((200, 30, 30, 0), swapped, mode="RGBA")))
    assert color == "RGB" and tuple(arr[0, 0]) == (255, 255, 255)  # transparent -> white
    arr, _ = normalize(open_image(tagged_png((200, 30, 30, 255), swapped, mode="RGBA")))
    assert arr[0, 0, 1] > 150 and arr[0, 0, 0] < 80

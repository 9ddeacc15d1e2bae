"""Turning user images into the codec's 8-bit RGB / L arrays, with documented mode rules.

* ``RGB``: coded as is.  ``L`` (and ``1``): coded as gray and decoded as ``L``.
* Alpha (``RGBA``, ``LA``, ``PA``, ``P`` with transparency): gqcodec has no alpha
  channel, so the image is composited over a white background before coding
  (transparent pixels become white); the decoded image has no alpha.
* ``P`` (palette): expanded to RGB (or to L when the palette is gray only).
* ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: converted to RGB with Pillow.
* 16-bit and 32-bit gray (``I;16*``, ``I``, ``F``): scaled to 8 bits
  (``I;16``: value / 257, rounded; ``I`` and ``F``: clipped to 0..255) and coded as L.
* EXIF orientation is applied before coding (the decoded image is upright and has no EXIF).
* Colour profiles: an RGB, RGBA or CMYK image with an embedded ICC profile that is not sRGB
  (Adobe RGB, Display P3, a printer's CMYK, ...) is converted to sRGB with Pillow's ImageCms
  (LittleCMS, perceptual intent) before coding, because the models were trained on sRGB and
  decoded images are untagged, which viewers take as sRGB. Without the conversion, a wide-gamut
  photo would decode with dull, shifted colours. Images without a profile, with an sRGB profile
  (its description names sRGB), gray images and unreadable profiles are coded as they are.
* Metadata (``prepare``): the EXIF (without its orientation tag, which has been applied) and XMP
  packets are returned as ``{"exif": bytes, "xmp": bytes}`` for the file's metadata block
  (format v4 or later); the codec stores them unless asked to strip them.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageInputError(ValueError):
    """The input cannot be read as an image."""


def open_image(src) -> Image.Image:
    """A PIL image from a path, bytes, file object, numpy array or PIL image."""
    if isinstance(src, Image.Image):
        return src
    if isinstance(src, np.ndarray):
        return array_to_image(src)
    try:
        if isinstance(src, (bytes, bytearray, memoryview)):
            im = Image.open(io.BytesIO(bytes(src)))
        elif isinstance(src, (str, Path)):
            p = Path(src)
            if p.is_dir():
                raise ImageInputError(f"{p} is a directory, not an image")
            if not p.exists():
                raise ImageInputError(f"{p}: no such file")
            im = Image.open(p)
        else:
            im = Image.open(src)
        im.load()
        return im
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        name = src if isinstance(src, (str, Path)) else "input"
        raise ImageInputError(f"{name}: not a readable image ({e.__class__.__name__}: {e})") from None


def array_to_image(a: np.ndarray) -> Image.Image:
    if a.dtype != np.uint8:
        raise ImageInputError(f"numpy images must be uint8, got {a.dtype}")
    if a.ndim == 2:
        return Image.fromarray(a, "L")
    if a.ndim == 3 and a.shape[2] == 3:
        return Image.fromarray(np.ascontiguousarray(a), "RGB")
    if a.ndim == 3 and a.shape[2] == 4:
        return Image.fromarray(np.ascontiguousarray(a), "RGBA")
    if a.ndim == 3 and a.shape[2] == 1:
        return Image.fromarray(np.ascontiguousarray(a[:, :, 0]), "L")
    raise ImageInputError(f"numpy images must be HxW, HxWx1, HxWx3 or HxWx4, got shape {a.shape}")


def _flatten_alpha(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, rgba).convert("RGB")


def _is_gray_palette(im: Image.Image) -> bool:
    pal = np.array(im.getpalette() or [], dtype=np.int32).reshape(-1, 3)
    used = np.unique(np.asarray(im))
    used = used[used < len(pal)]
    return len(pal) > 0 and bool(np.all(pal[used, 0] == pal[used, 1]) and np.all(pal[used, 1] == pal[used, 2]))


_SRGB = None


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """``im`` converted from its embedded ICC profile to sRGB (module docstring), else ``im``."""
    global _SRGB
    if not icc or im.mode not in ("RGB", "RGBA", "CMYK"):
        return im
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without LittleCMS
        return im
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in (ImageCms.getProfileDescription(src) or "").lower().replace(" ", ""):
            return im
        if _SRGB is None:
            _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
        return ImageCms.profileToProfile(im, src, _SRGB, renderingIntent=ImageCms.Intent.PERCEPTUAL,
                                         outputMode=out_mode)
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
        return im  # a profile LittleCMS cannot use: coded as untagged, i.e. as sRGB


# EXIF/TIFF tags that describe the source file's pixel layout, not the photo: width, length, bits per
# sample, compression, photometric interpretation, strip offsets, orientation, samples per pixel, rows
# per strip, strip byte counts, planar configuration, predictor, tile layout, extra samples, sample
# format, JPEG interchange offsets, YCbCr subsampling / positioning
_STRUCTURE_TAGS = (256, 257, 258, 259, 262, 273, 274, 277, 278, 279, 284, 317, 322, 323, 324, 325, 338, 339,
                   513, 514, 530, 531)


def _metadata(im: Image.Image, upright: Image.Image) -> dict:
    """EXIF and XMP bytes of ``im`` (module docstring); ``upright`` is its ``exif_transpose``."""
    out = {}
    exif = Image.Exif()  # a copy: the caller's image keeps its EXIF (a TIFF's copy would have none)
    exif.load(im.getexif().tobytes())
    for tag in _STRUCTURE_TAGS:  # orientation is applied; a TIFF input's IFD also describes its own pixels
        exif.pop(tag, None)
    if len(exif):
        out["exif"] = exif.tobytes()
    xmp = upright.info.get("xmp") or upright.info.get("XML:com.adobe.xmp")  # its orientation updated
    if xmp:
        out["xmp"] = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    return out


def prepare(im: Image.Image) -> tuple[np.ndarray, str, dict]:
    """``normalize``'s ``(array, color)`` plus the image's metadata ``{"exif": bytes, "xmp": bytes}``."""
    upright = ImageOps.exif_transpose(im)
    try:
        meta = _metadata(im, upright)
    except Exception:  # noqa: BLE001 - a malformed EXIF block is dropped, it never stops coding
        meta = {}
    return (*_normalize_upright(upright, im.info.get("icc_profile")), meta)


def normalize(im: Image.Image) -> tuple[np.ndarray, str]:
    """``(array, color)``: HxWx3 uint8 RGB for color ``"RGB"``, or HxW uint8 for ``"L"``."""
    return _normalize_upright(ImageOps.exif_transpose(im), im.info.get("icc_profile"))


def _normalize_upright(im: Image.Image, icc: bytes | None) -> tuple[np.ndarray, str]:
    im = _to_srgb(im, icc)
    mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        gray = mode in ("LA", "La")
        rgb = _flatten_alpha(im)
        return (np.asarray(rgb.convert("L")), "L") if gray else (np.asarray(rgb), "RGB")
    if mode == "P":
        return (np.asarray(im.convert("L")), "L") if _is_gray_palette(im) else (np.asarray(im.convert("RGB")), "RGB")
    if mode in ("L", "1"):
        return np.asarray(im.convert("L")), "L"
    if mode.startswith("I;16"):
        a = np.asarray(im).astype(np.float64)
        return np.clip(np.round(a / 257.0), 0, 255).astype(np.uint8), "L"
    if mode in ("I", "F"):
        a = np.asarray(im).astype(np.float64)
        return np.clip(np.round(a), 0, 255).astype(np.uint8), "L"
    if mode == "RGB":
        return np.asarray(im), "RGB"
    try:
        return np.asarray(im.convert("RGB")), "RGB"
    except (ValueError, OSError) as e:
        raise ImageInputError(f"cannot convert image mode {mode} to RGB: {e}") from None


def save_metadata_kwargs(img: Image.Image, fmt: str) -> dict:
    """Keyword arguments for ``img.save(..., format=fmt)`` that write the EXIF and XMP a decoded
    .gqc image carries in ``img.info``: EXIF for every format whose Pillow writer takes it (PNG,
    JPEG, WebP, TIFF...), XMP for JPEG and WebP, and for PNG as the standard iTXt chunk."""
    kw = {}
    if img.info.get("exif"):
        kw["exif"] = img.info["exif"]
    xmp = img.info.get("xmp")
    if xmp:
        fmt = fmt.upper()
        if fmt in ("JPEG", "WEBP"):
            kw["xmp"] = xmp
        elif fmt == "PNG":
            from PIL import PngImagePlugin

            info = PngImagePlugin.PngInfo()
            info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"), zip=True)
            kw["pnginfo"] = info
    return kw

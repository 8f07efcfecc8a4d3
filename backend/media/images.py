"""Validate an uploaded image and re-encode it clean. Pure function, no I/O.

``process_image`` refuses anything that is not a small, still JPEG, PNG or WebP, checking the
byte size before parsing and the declared pixel count before decoding (the decompression-bomb
guard). What it accepts comes out upright (EXIF orientation applied), in sRGB, stripped of all
metadata (EXIF, GPS, XMP, ICC, comments, text chunks) and re-encoded with fixed settings, so
the same upload always yields the same bytes and the same hash.

Animated images (APNG, animated WebP) are refused rather than cut to their first frame: a
labeller would be shown something other than what the contributor uploaded, and every frame
would cost a full decode. A JPEG carrying extra MPF pictures (Pillow's "MPO", common from
phone cameras) is not animated: its primary picture is kept and the others dropped.
"""

import hashlib
import io
import struct
import threading
import warnings
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, cast

from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from backend.core.errors import BadRequest, ConfigurationError

ImageFormat = Literal["JPEG", "PNG", "WEBP"]

SUPPORTED_FORMATS: tuple[ImageFormat, ...] = ("JPEG", "PNG", "WEBP")

MIME_TYPES: dict[ImageFormat, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
}

# Pillow names a JPEG with extra MPF pictures "MPO"; it is a JPEG whose first picture is the
# photo itself.
_FORMAT_FAMILY: dict[str, ImageFormat] = {
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "PNG": "PNG",
    "WEBP": "WEBP",
}

_SAVE_OPTIONS: dict[ImageFormat, dict[str, Any]] = {
    "JPEG": {"quality": 90},
    "PNG": {"optimize": True},
    "WEBP": {"quality": 90},
}

# Modes each encoder is given; anything else is converted to one of these.
_OUTPUT_MODES: dict[ImageFormat, frozenset[str]] = {
    "JPEG": frozenset({"L", "RGB"}),
    "PNG": frozenset({"L", "RGB", "RGBA"}),
    "WEBP": frozenset({"RGB", "RGBA"}),
}

# warnings.catch_warnings swaps the process-wide filter list; the lock keeps concurrent calls
# from restoring each other's filters out of order.
_warnings_lock = threading.Lock()


class InvalidImage(BadRequest):
    """The upload is not an image this service accepts; ``detail`` says why."""


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    content: bytes
    content_hash: str
    format: ImageFormat
    mime_type: str
    width: int
    height: int
    thumbnail: bytes
    thumbnail_hash: str


def process_image(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    allowed_formats: Collection[str] = SUPPORTED_FORMATS,
    thumbnail_size: int = 256,
) -> ProcessedImage:
    """Validate an uploaded image and return it re-encoded without metadata, plus a thumbnail.

    Raises InvalidImage naming the problem. The pixel limit in force is the lower of
    ``max_pixels`` and Pillow's ``Image.MAX_IMAGE_PIXELS``: Pillow's decompression-bomb
    warning is treated as an error.
    """
    allowed = _check_allowed_formats(allowed_formats)
    if thumbnail_size < 1:
        raise ValueError("thumbnail_size must be at least 1")
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Process-wide switch under which Pillow pads truncated files instead of failing;
        # refuse to run rather than accept half-uploaded images.
        raise ConfigurationError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; truncated images cannot be refused"
        )

    if not data:
        raise InvalidImage("image is empty")
    if len(data) > max_bytes:
        raise InvalidImage(f"image is {len(data)} bytes, above the limit of {max_bytes} bytes")

    # Pillow's WebP reader allocates the whole canvas when it opens the file, so the declared
    # size is checked from the header first.
    declared = _declared_size(data)
    if declared is not None:
        _check_dimensions(*declared, max_pixels=max_pixels)

    with _open(data, max_pixels=max_pixels) as source:
        family = _FORMAT_FAMILY.get(source.format or "")
        if family is None or family not in allowed:
            raise InvalidImage(
                f"image format {source.format} is not allowed; "
                f"allowed formats: {', '.join(sorted(allowed))}"
            )
        _check_dimensions(*source.size, max_pixels=max_pixels)
        frames = getattr(source, "n_frames", 1)
        if frames > 1 and source.format != "MPO":
            raise InvalidImage(
                f"animated images are not accepted ({frames} frames); upload a still image"
            )
        try:
            source.load()
            upright = ImageOps.exif_transpose(source)
        except (OSError, SyntaxError, ValueError, EOFError, struct.error):
            raise InvalidImage("image data is truncated or corrupt") from None

    image = _normalise_mode(_to_srgb(upright), family)
    # Drops EXIF, XMP, ICC, comments and text chunks, which the encoders would otherwise copy.
    image.info = {}
    content = _encode(image, family)

    thumb = image.copy()
    thumb.thumbnail((thumbnail_size, thumbnail_size), Image.Resampling.LANCZOS)
    thumb.info = {}
    thumbnail = _encode(thumb, family)

    return ProcessedImage(
        content=content,
        content_hash=hashlib.sha256(content).hexdigest(),
        format=family,
        mime_type=MIME_TYPES[family],
        width=image.width,
        height=image.height,
        thumbnail=thumbnail,
        thumbnail_hash=hashlib.sha256(thumbnail).hexdigest(),
    )


def _check_allowed_formats(allowed_formats: Collection[str]) -> frozenset[ImageFormat]:
    if isinstance(allowed_formats, str):
        raise TypeError("allowed_formats must be a collection of format names, not a string")
    allowed = {name.upper() for name in allowed_formats}
    unsupported = allowed - set(SUPPORTED_FORMATS)
    if unsupported:
        raise ValueError(f"cannot re-encode {', '.join(sorted(unsupported))}")
    return cast(frozenset[ImageFormat], frozenset(allowed))


def _check_dimensions(width: int, height: int, *, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise InvalidImage(f"image has zero width or height ({width}x{height})")
    if width * height > max_pixels:
        raise InvalidImage(
            f"image is {width}x{height} = {width * height} pixels, "
            f"above the limit of {max_pixels} pixels"
        )


@contextmanager
def _open(data: bytes, *, max_pixels: int) -> Iterator[ImageFile.ImageFile]:
    """Parse the header only; Pillow decodes pixel data later, on ``load()``."""
    try:
        with _warnings_lock, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InvalidImage("file is not a recognised image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
        raise InvalidImage(
            f"image has more than {limit} pixels; refused as a possible decompression bomb"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error):
        raise InvalidImage("image data is truncated or corrupt") from None
    with image:
        yield image


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG or WebP header, or None if this is neither (or too short)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: 24-bit canvas width-1 and height-1
        return (
            int.from_bytes(data[24:27], "little") + 1,
            int.from_bytes(data[27:30], "little") + 1,
        )
    if chunk == b"VP8L":  # lossless: 14-bit width-1 and height-1 after the 0x2f signature
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":  # lossy: 14-bit width and height after the frame tag and start code
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert pixels tagged with an ICC profile to sRGB, what untagged images are taken to be.

    A profile that is malformed or does not fit the image's mode is ignored, as browsers do.
    """
    icc = image.info.get("icc_profile")
    if not icc:
        return image
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    if image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        # A fresh sRGB profile per call: LittleCMS profiles are not safe to share across threads.
        srgb = ImageCms.createProfile("sRGB")
        converted = ImageCms.profileToProfile(image, profile, srgb, outputMode=output_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image
    assert converted is not None
    return converted


def _normalise_mode(image: Image.Image, family: ImageFormat) -> Image.Image:
    """Bring the image to a mode the output encoder stores faithfully."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grey (PNG): scale to 8 bits; a plain convert would clip most of it to white.
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
        mode = "L"
    if image.has_transparency_data:
        target = "RGBA"
    elif mode in ("1", "L"):
        target = "L"
    else:
        target = "RGB"
    if target not in _OUTPUT_MODES[family]:
        # JPEG stores no alpha; the WebP encoder takes colour only.
        target = "RGB"
    return image if image.mode == target else image.convert(target)


def _encode(image: Image.Image, family: ImageFormat) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=family, **_SAVE_OPTIONS[family])
    return buffer.getvalue()

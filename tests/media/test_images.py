import hashlib
import io
import random
import struct
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile
from PIL.PngImagePlugin import PngInfo

from backend.core.errors import BadRequest, ConfigurationError
from backend.media.images import InvalidImage, ProcessedImage, process_image

MAX_BYTES = 5_000_000
MAX_PIXELS = 4_000_000

# An empty little-endian TIFF header: enough for Pillow to write a WebP VP8X chunk.
TINY_EXIF = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00"


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def gradient(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """A picture with some structure, so encoders have real work to do."""
    width, height = size
    image = Image.new("RGB", size)
    image.putdata(
        [
            (x * 255 // width, y * 255 // height, (x + y) % 256)
            for y in range(height)
            for x in range(width)
        ]
    )
    return image.convert(mode)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def patch_png_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the IHDR width and height of a PNG and fix its CRC."""
    assert data[12:16] == b"IHDR"
    body = struct.pack(">II", width, height) + data[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + body))
    return data[:16] + body + crc + data[33:]


def patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the dimensions in a baseline JPEG's SOF0 segment."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def must_not_open(*args: object, **kwargs: object) -> None:
    raise AssertionError("Pillow parsed an upload that should have been refused before")


def process(
    data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS, **options: Any
) -> ProcessedImage:
    return process_image(data, max_bytes=max_bytes, max_pixels=max_pixels, **options)


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def refusal(data: bytes, **overrides: Any) -> str:
    with pytest.raises(InvalidImage) as caught:
        process(data, **overrides)
    assert isinstance(caught.value, BadRequest)
    assert caught.value.status_code == 400
    return caught.value.detail


# Accepted images


@pytest.mark.parametrize(
    ("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_valid_images_are_re_encoded_with_a_thumbnail(fmt: str, mime: str) -> None:
    result = process(encode(gradient((600, 300)), fmt))

    assert isinstance(result, ProcessedImage)
    assert (result.format, result.mime_type) == (fmt, mime)
    assert (result.width, result.height) == (600, 300)
    assert result.content_hash == hashlib.sha256(result.content).hexdigest()
    assert result.thumbnail_hash == hashlib.sha256(result.thumbnail).hexdigest()

    content = decoded(result.content)
    assert (content.format, content.size, content.mode) == (fmt, (600, 300), "RGB")
    thumbnail = decoded(result.thumbnail)
    assert thumbnail.format == fmt
    assert thumbnail.size == (256, 128)


def test_thumbnail_respects_the_requested_size_and_never_enlarges() -> None:
    tall = process(encode(gradient((90, 300)), "PNG"), thumbnail_size=100)
    small = process(encode(gradient((40, 30)), "PNG"), thumbnail_size=100)

    assert decoded(tall.thumbnail).size == (30, 100)
    assert decoded(small.thumbnail).size == (40, 30)


def test_jpeg_is_saved_at_quality_90() -> None:
    source = gradient((200, 200))
    result = process(encode(source, "JPEG", quality=50))

    # Same decoded pixels re-encoded at 90 by hand gives the same bytes.
    expected = encode(decoded(encode(source, "JPEG", quality=50)), "JPEG", quality=90)
    assert result.content == expected


def test_processing_is_deterministic() -> None:
    for fmt in ("JPEG", "PNG", "WEBP"):
        data = encode(gradient((300, 200)), fmt)
        first = process(data)
        second = process(bytes(data))
        assert first == second


def test_jpeg_exif_gps_xmp_and_comment_are_stripped_and_orientation_applied() -> None:
    # Landscape pixels with a red block at the top left, tagged "rotate 90° clockwise to view".
    source = Image.new("RGB", (80, 40), "white")
    source.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Phone 12"
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(
        {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (52.0, 22.0, 12.5),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: (4.0, 53.0, 33.0),
        }
    )
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>secret-xmp</rdf:RDF></x:xmpmeta>'
    data = encode(source, "JPEG", exif=exif, xmp=xmp, comment=b"secret-comment")
    # The input really carries what must be removed.
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    for marker in (b"Exif", b"PhoneMaker", b"secret-xmp", b"secret-comment"):
        assert marker in data

    result = process(data)

    assert (result.width, result.height) == (40, 80)
    for blob in (result.content, result.thumbnail):
        image = decoded(blob)
        assert image.getexif() == {}
        assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
        assert not {"exif", "xmp", "comment", "icc_profile"} & image.info.keys()
        for marker in (b"Exif", b"PhoneMaker", b"http://ns.adobe.com", b"secret"):
            assert marker not in blob
    # Upright: the block that was top left is now top right.
    upright = decoded(result.content)
    red, green, _ = pixel(upright, (upright.width - 5, 5))
    assert red > 200 and green < 60
    assert pixel(upright, (5, 5)) == pytest.approx((255, 255, 255), abs=30)


def test_png_text_exif_and_icc_are_stripped() -> None:
    info = PngInfo()
    info.add_text("Author", "secret-author")
    info.add_itxt("Comment", "secret-itxt")
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(gradient(), "PNG", pnginfo=info, exif=exif, icc_profile=icc)
    assert b"secret-author" in data and b"eXIf" in data and b"iCCP" in data

    result = process(data)

    for blob in (result.content, result.thumbnail):
        for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP", b"secret", b"PhoneMaker"):
            assert chunk not in blob
    # sRGB to sRGB leaves the pixels as they were.
    assert decoded(result.content).getpixel((10, 10)) == gradient().getpixel((10, 10))


def test_malformed_icc_profile_is_ignored() -> None:
    data = encode(gradient(), "PNG", icc_profile=b"not a colour profile")
    assert b"iCCP" in data

    result = process(data)

    assert b"iCCP" not in result.content
    assert decoded(result.content).getpixel((10, 10)) == gradient().getpixel((10, 10))


def test_webp_metadata_is_stripped() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    data = encode(gradient(), "WEBP", exif=exif, xmp=b"<x:xmpmeta>secret-xmp</x:xmpmeta>")
    assert b"EXIF" in data and b"XMP " in data

    result = process(data)

    for blob in (result.content, result.thumbnail):
        for marker in (b"EXIF", b"XMP ", b"ICCP", b"PhoneMaker", b"secret"):
            assert marker not in blob


@pytest.mark.parametrize(
    ("fmt", "source", "expected_mode"),
    [
        ("JPEG", Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "RGB"),
        ("JPEG", gradient(mode="L"), "L"),
        ("PNG", gradient(mode="P"), "RGB"),
        ("PNG", gradient(mode="LA"), "RGBA"),
        ("PNG", gradient(mode="RGBA"), "RGBA"),
        ("PNG", gradient(mode="L"), "L"),
        ("PNG", gradient(mode="1"), "L"),
        ("WEBP", Image.new("RGBA", (32, 32), (255, 0, 0, 100)), "RGBA"),
    ],
)
def test_colour_modes_are_normalised(fmt: str, source: Image.Image, expected_mode: str) -> None:
    result = process(encode(source, fmt))

    assert decoded(result.content).mode == expected_mode
    assert decoded(result.thumbnail).mode == expected_mode


def test_cmyk_jpeg_comes_out_as_rgb_with_the_same_colour() -> None:
    data = encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG")

    colour = pixel(decoded(process(data).content), (16, 16))

    assert colour == pytest.approx((255, 0, 0), abs=8)


def test_palette_png_with_transparency_keeps_its_alpha() -> None:
    source = Image.new("P", (16, 16), 0)
    source.putpalette([255, 0, 0, 0, 0, 255])
    source.paste(1, (0, 0, 8, 16))
    data = encode(source, "PNG", transparency=1)

    image = decoded(process(data).content)

    assert image.mode == "RGBA"
    assert pixel(image, (2, 2))[3] == 0
    assert image.getpixel((12, 2)) == (255, 0, 0, 255)


def test_16_bit_grey_png_is_scaled_not_clipped() -> None:
    data = encode(Image.new("I;16", (8, 8), 40000), "PNG")

    image = decoded(process(data).content)

    assert image.mode == "L"
    assert image.getpixel((0, 0)) == 156  # 40000 / 256


def test_multi_picture_jpeg_keeps_the_primary_picture() -> None:
    data = encode(
        Image.new("RGB", (40, 30), (255, 0, 0)),
        "MPO",
        save_all=True,
        append_images=[Image.new("RGB", (20, 15), (0, 0, 255))],
    )
    assert Image.open(io.BytesIO(data)).format == "MPO"

    result = process(data)

    assert (result.format, result.width, result.height) == ("JPEG", 40, 30)
    image = decoded(result.content)
    assert image.format == "JPEG"
    assert pixel(image, (20, 15)) == pytest.approx((255, 0, 0), abs=8)


def test_allowed_formats_can_be_narrowed() -> None:
    data = encode(gradient(), "WEBP")

    detail = refusal(data, allowed_formats=("JPEG", "PNG"))

    assert detail == "image format WEBP is not allowed; allowed formats: JPEG, PNG"


def test_allowed_formats_must_be_ones_it_can_encode() -> None:
    with pytest.raises(ValueError, match="GIF"):
        process(encode(gradient(), "PNG"), allowed_formats=("PNG", "GIF"))


# Refusals, one by one


def test_empty_input_is_refused() -> None:
    assert refusal(b"") == "image is empty"


def test_oversize_input_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(gradient(), "PNG")

    monkeypatch.setattr(Image, "open", must_not_open)

    detail = refusal(data, max_bytes=len(data) - 1)

    assert detail == f"image is {len(data)} bytes, above the limit of {len(data) - 1} bytes"


def test_input_of_exactly_max_bytes_is_accepted() -> None:
    data = encode(gradient(), "PNG")

    assert process(data, max_bytes=len(data))


def test_random_garbage_is_refused() -> None:
    garbage = random.Random(1234).randbytes(4096)

    assert refusal(garbage) == "file is not a recognised image"


def test_text_is_refused() -> None:
    assert (
        refusal(b"%PDF-1.7\n" + b"not an image at all\n" * 50) == "file is not a recognised image"
    )


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_formats_are_refused_by_name(fmt: str) -> None:
    detail = refusal(encode(gradient(), fmt))

    assert detail == f"image format {fmt} is not allowed; allowed formats: JPEG, PNG, WEBP"


def test_dimensions_above_max_pixels_are_refused() -> None:
    data = encode(gradient((100, 50)), "JPEG")

    detail = refusal(data, max_pixels=4999)

    assert detail == "image is 100x50 = 5000 pixels, above the limit of 4999 pixels"
    assert process(data, max_pixels=5000).width == 100


@pytest.mark.parametrize(
    ("fmt", "options", "first_chunk"),
    [
        ("PNG", {}, b"IHDR"),
        ("WEBP", {}, b"VP8 "),
        ("WEBP", {"lossless": True}, b"VP8L"),
        ("WEBP", {"exif": TINY_EXIF}, b"VP8X"),
    ],
)
def test_dimensions_above_max_pixels_are_refused_from_the_header(
    fmt: str, options: dict[str, object], first_chunk: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = encode(gradient((100, 50)), fmt, **options)
    assert data[12:16] == first_chunk
    monkeypatch.setattr(Image, "open", must_not_open)

    detail = refusal(data, max_pixels=4999)

    assert detail == "image is 100x50 = 5000 pixels, above the limit of 4999 pixels"


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any pixel data is decoded."""

    def must_not_decode(self: ImageFile.ImageFile) -> None:
        raise AssertionError("decoded pixel data of a refused image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", must_not_decode)


def test_png_declaring_50000_by_50000_is_refused_without_decoding(no_decoding: None) -> None:
    bomb = patch_png_size(encode(gradient((16, 16)), "PNG"), 50_000, 50_000)
    pillow_limit = Image.MAX_IMAGE_PIXELS

    detail = refusal(bomb, max_pixels=100_000_000)

    assert detail == (
        "image is 50000x50000 = 2500000000 pixels, above the limit of 100000000 pixels"
    )
    assert pillow_limit == Image.MAX_IMAGE_PIXELS


def test_webp_canvas_above_max_pixels_is_refused_before_pillow_opens_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = encode(gradient((16, 16)), "WEBP", exif=TINY_EXIF)
    assert data[12:16] == b"VP8X"
    bomb = data[:24] + (16_000 - 1).to_bytes(3, "little") * 2 + data[30:]

    monkeypatch.setattr(Image, "open", must_not_open)

    assert (
        refusal(bomb)
        == "image is 16000x16000 = 256000000 pixels, above the limit of 4000000 pixels"
    )


def test_pillow_decompression_bomb_error_is_refused(no_decoding: None) -> None:
    # JPEG dimensions are not pre-read, so Pillow's own check fires while opening.
    bomb = patch_jpeg_size(encode(gradient((16, 16)), "JPEG"), 60_000, 60_000)

    detail = refusal(bomb, max_pixels=10**10)

    assert "refused as a possible decompression bomb" in detail


def test_pillow_decompression_bomb_warning_is_an_error_only_within_the_call(
    no_decoding: None,
) -> None:
    # Between Pillow's warning and error thresholds, and under the caller's own limit.
    assert Image.MAX_IMAGE_PIXELS is not None
    side = int((Image.MAX_IMAGE_PIXELS * 1.5) ** 0.5)
    bomb = patch_jpeg_size(encode(gradient((16, 16)), "JPEG"), side, side)
    filters = list(warnings.filters)

    detail = refusal(bomb, max_pixels=10**10)

    assert detail == (
        f"image has more than {Image.MAX_IMAGE_PIXELS} pixels; "
        "refused as a possible decompression bomb"
    )
    assert warnings.filters == filters
    with pytest.warns(Image.DecompressionBombWarning):
        Image.open(io.BytesIO(bomb))


def test_zero_size_image_is_refused() -> None:
    zero = patch_png_size(encode(gradient((16, 16)), "PNG"), 0, 16)

    assert refusal(zero) == "image has zero width or height (0x16)"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_image_is_refused(fmt: str) -> None:
    data = encode(gradient((300, 200)), fmt)

    assert refusal(data[: len(data) // 2]) == "image data is truncated or corrupt"


def test_corrupt_image_data_is_refused() -> None:
    data = bytearray(encode(gradient((300, 200)), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 8 : idat + 40] = b"\xff" * 32  # garbage inside the zlib stream

    assert refusal(bytes(data)) == "image data is truncated or corrupt"


def test_load_truncated_images_setting_is_not_relied_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = encode(gradient((300, 200)), "JPEG")

    with pytest.raises(ConfigurationError, match="LOAD_TRUNCATED_IMAGES"):
        process(data[: len(data) // 2])


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_images_are_refused(fmt: str) -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "green", "blue")]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:])

    detail = refusal(data)

    assert detail == "animated images are not accepted (3 frames); upload a still image"


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_single_frame_saved_as_animation_is_accepted(fmt: str) -> None:
    data = encode(Image.new("RGB", (16, 16), "red"), fmt, save_all=True)

    assert process(data).format == fmt


def test_concurrent_calls_leave_the_warning_filters_as_they_were() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None
    side = int((Image.MAX_IMAGE_PIXELS * 1.5) ** 0.5)
    bomb = patch_jpeg_size(encode(gradient((16, 16)), "JPEG"), side, side)
    good = encode(gradient((200, 200)), "PNG")
    filters = list(warnings.filters)

    def run(data: bytes) -> str:
        try:
            return process(data, max_pixels=10**10).format
        except InvalidImage as exc:
            return exc.detail

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(run, [bomb, good] * 32))

    assert outcomes[1::2] == ["PNG"] * 32
    assert all("decompression bomb" in outcome for outcome in outcomes[::2])
    assert warnings.filters == filters

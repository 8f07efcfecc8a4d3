"""ImageFolder for image classification: ``<class directory>/<hash>.<ext>`` per item.

The layout torchvision's ``ImageFolder`` and the ``datasets`` "imagefolder" builder read: the
directory an image is in is its label. ``classes.json`` beside the directories lists
``{"id", "name", "directory"}`` per class in the project's order (ImageFolder numbers classes
by sorted directory name, which need not be that order). A class no item has gets no
directory (torchvision refuses an empty class directory).

A class name becomes a directory name by a fixed rule (``directory_names``):

1. every character except ASCII letters, digits, ``-``, ``_`` and ``.`` is percent-encoded
   from its UTF-8 bytes (``a/b`` -> ``a%2Fb``, ``chat noir`` -> ``chat%20noir``,
   ``%`` -> ``%25``), and a leading or trailing ``.`` becomes ``%2E`` (so ``..`` ->
   ``%2E%2E``): no separator, no ``..``, no hidden file, nothing a filesystem rewrites;
2. the result gets ``~<i>`` appended (``i`` = the class's position in the project's list, the
   part before it cut to 100 characters when longer) when it is empty, when it is longer than
   100 characters, when it is a Windows device name (``CON``, ``nul.txt``, ``COM1``...), or
   when it equals another class's result ignoring case (``Cat`` and ``cat`` on macOS or
   Windows).

No two classes can share a directory, even on a case-insensitive filesystem: step 1 is
reversible and produces no ``~``, so unmarked names are distinct and, by step 2, distinct
ignoring case; a marked name ends with its own class's position after its only ``~``.
"""

import json

from backend.datasets.exports.common import Job, class_id, class_ids, image_name, label_payload

MAX_DIRECTORY = 100
_KEEP = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)


def _encode(name: str) -> str:
    out = "".join(c if c in _KEEP else "".join(f"%{b:02X}" for b in c.encode()) for c in name)
    if out.startswith("."):
        out = "%2E" + out[1:]
    if out.endswith("."):
        out = out[:-1] + "%2E"
    return out


def _cut(encoded: str, limit: int) -> str:
    """``encoded`` cut to at most ``limit`` characters, never inside a ``%XX``."""
    cut = encoded[:limit]
    tail = cut.rfind("%")
    if tail >= 0 and tail > len(cut) - 3:
        cut = cut[:tail]
    return cut


def directory_names(classes: list[str]) -> list[str]:
    """The directory of each class, in the same order (see the module docstring)."""
    encoded = [_encode(name) for name in classes]
    folded: dict[str, int] = {}
    for e in encoded:
        folded[e.casefold()] = folded.get(e.casefold(), 0) + 1
    names = []
    for i, e in enumerate(encoded):
        if (
            not e
            or len(e) > MAX_DIRECTORY
            or e.split(".", 1)[0].casefold() in _WINDOWS_DEVICES
            or folded[e.casefold()] > 1
        ):
            e = f"{_cut(e, MAX_DIRECTORY)}~{i}"
        names.append(e)
    return names


def write_imagefolder(job: Job) -> None:
    classes = job.ctx.classes or []
    directories = directory_names(classes)
    ids = class_ids(job.ctx)
    listing = [
        {"id": i, "name": name, "directory": d}
        for i, (name, d) in enumerate(zip(classes, directories, strict=True))
    ]
    with job.out.open("classes.json") as f:
        f.write_text(json.dumps(listing, ensure_ascii=False, indent=2) + "\n")
    for item in job.items():
        cls = class_id(ids, label_payload("label", item), item)
        job.copy_image(item, f"{directories[cls]}/{image_name(item)}")
        job.progress.advance()

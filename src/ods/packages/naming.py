"""Which filenames a package may have."""

from __future__ import annotations

import unicodedata

from ods.core.errors import InvalidInput

MAX_FILENAME_BYTES = 255


def normal_name(name: str) -> str:
    """One spelling for names that look alike: `café.pkg` typed as é or as e and an accent
    (NFC and NFD) is one package."""
    return unicodedata.normalize("NFC", name)


def check_filename(name: str) -> str:
    """The name in its one spelling (NFC) if it is safe as one file in the share dir, else
    InvalidInput."""
    name = normal_name(name)
    if not name:
        raise InvalidInput("The file has no name; send it with a filename.")
    if "/" in name or "\\" in name:
        raise InvalidInput(f"Filename {name!r} contains a path separator; send the bare name.")
    if ".." in name:
        raise InvalidInput(f"Filename {name!r} is not allowed: it contains '..'.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise InvalidInput("The filename contains a NUL or other control character.")
    if name != name.strip() or name.startswith("."):
        raise InvalidInput(
            f"Filename {name!r} starts with a dot or has leading or trailing spaces."
        )
    if len(name.encode("utf-8")) > MAX_FILENAME_BYTES:
        raise InvalidInput(f"The filename is longer than {MAX_FILENAME_BYTES} bytes.")
    return name

"""Getting safely from uploaded bytes to the XML bytes: the size cap and the share-code ZIP.

Nothing here trusts a size written in a header: the ZIP's end record is checked before
zipfile parses its directory, and the entry is read with a bounded read. The XML itself
is screened while it is parsed, by :mod:`decentro_adapters.aadhaar.parsing`.

Cost: zipfile decrypts ZipCrypto in pure Python, about 0.7 microseconds per byte on a
2-core server, so the size cap also bounds the CPU an encrypted upload can cost.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from .errors import FILE_TOO_LARGE, FORMAT_UNSUPPORTED, SHARE_CODE_WRONG, ZIP_INVALID, reject

__all__ = ["MAX_CENTRAL_DIRECTORY", "MAX_ZIP_ENTRIES", "open_container"]

MAX_ZIP_ENTRIES = 4
MAX_CENTRAL_DIRECTORY = 16 * 1024  # bounds what zipfile parses (~350 entries)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, struct.error)


def open_container(content: bytes, share_code: str, *, max_bytes: int) -> bytes:
    """The XML bytes of ``content``: itself, or the single entry of a share-code ZIP."""
    if len(content) > max_bytes:
        raise reject(FILE_TOO_LARGE, f"The file is larger than {max_bytes} bytes.")
    if content.startswith(_ZIP_MAGIC):
        return _unzip(content, share_code, max_bytes=max_bytes)
    return content


def _check_directory(content: bytes) -> None:
    """Cap entries and central-directory size from the end record, before zipfile builds an
    object per entry (a 5 MB upload could otherwise declare ~100,000 of them)."""
    # Find the end record exactly as zipfile does, so both read the same one.
    if content[-_EOCD_SIZE:-_EOCD_SIZE + 4] == _EOCD and content[-2:] == b"\0\0":
        position = len(content) - _EOCD_SIZE
    else:
        position = content.rfind(_EOCD, max(0, len(content) - _EOCD_SIZE - 0xFFFF))
    if position < 0 or len(content) < position + _EOCD_SIZE:
        raise reject(ZIP_INVALID, "The ZIP file is damaged or not a ZIP file.")
    entries, directory_size = struct.unpack_from("<HI", content, position + 10)
    zip64 = b"PK\x06\x07" in content[max(0, position - 20) : position]
    if entries > MAX_ZIP_ENTRIES or directory_size > MAX_CENTRAL_DIRECTORY or zip64:
        raise reject(FORMAT_UNSUPPORTED, "The ZIP must hold exactly one XML file, as UIDAI issues it.")


def _unzip(content: bytes, share_code: str, *, max_bytes: int) -> bytes:
    _check_directory(content)
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except _ZIP_ERRORS:
        raise reject(ZIP_INVALID, "The ZIP file is damaged or not a ZIP file.") from None
    with archive:
        entries = archive.infolist()
        if len(entries) != 1 or entries[0].is_dir() or not entries[0].filename.lower().endswith(".xml"):
            raise reject(FORMAT_UNSUPPORTED, "The ZIP must hold exactly one XML file, as UIDAI issues it.")
        entry = entries[0]
        if entry.file_size > max_bytes:
            raise reject(FILE_TOO_LARGE, f"The XML inside the ZIP is larger than {max_bytes} bytes.")
        encrypted = bool(entry.flag_bits & 0x1)
        try:
            with archive.open(entry, pwd=share_code.encode("utf-8") if encrypted else None) as handle:
                # Bounded: never more than one byte past the cap, whatever the header says.
                data = handle.read(max_bytes + 1)
        except NotImplementedError:
            raise reject(FORMAT_UNSUPPORTED, "The ZIP uses an unsupported encryption or compression.") from None
        except (RuntimeError, *_ZIP_ERRORS):
            # RuntimeError is zipfile's "bad password"; a wrong code can also pass the
            # one-byte check and then fail decompression or the CRC.
            if encrypted:
                raise reject(SHARE_CODE_WRONG, "The share code does not open this ZIP file.") from None
            raise reject(ZIP_INVALID, "The ZIP file is damaged.") from None
    if len(data) > max_bytes:
        raise reject(FILE_TOO_LARGE, f"The XML inside the ZIP is larger than {max_bytes} bytes.")
    return data

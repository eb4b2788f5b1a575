"""A ZIP writer with traditional PKWARE encryption (ZipCrypto), as UIDAI's offline e-KYC uses.

UIDAI's Paperless Offline e-KYC ZIP holds one XML entry encrypted with legacy ZipCrypto,
the password being the resident's share code (uidai.gov.in, "Aadhaar Paperless Offline
e-KYC"). The standard library reads such files but cannot write them; the sandbox needs to,
so this module writes them. ZipCrypto is weak cryptography: it is used here only because it
is what UIDAI's format is, for synthetic sandbox files.
"""

from __future__ import annotations

import os
import struct
import zlib

__all__ = ["ZipCryptoCipher", "encrypted_zip"]


def _crc_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc_table()


class ZipCryptoCipher:
    """The three-key stream cipher of the PKWARE APPNOTE (section 6.1)."""

    def __init__(self, password: bytes) -> None:
        self.keys = [0x12345678, 0x23456789, 0x34567890]
        for byte in password:
            self._update(byte)

    @staticmethod
    def _crc(crc: int, byte: int) -> int:
        return (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]

    def _update(self, byte: int) -> None:
        k0, k1, k2 = self.keys
        k0 = self._crc(k0, byte)
        k1 = ((k1 + (k0 & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        k2 = self._crc(k2, k1 >> 24)
        self.keys = [k0, k1, k2]

    def encrypt(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            k = self.keys[2] | 2
            out.append(byte ^ (((k * (k ^ 1)) >> 8) & 0xFF))
            self._update(byte)
        return bytes(out)


def encrypted_zip(name: str, content: bytes, password: str) -> bytes:
    """A one-entry ZIP: ``content`` deflated under ``name``, ZipCrypto-encrypted with ``password``."""
    crc = zlib.crc32(content)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = packer.compress(content) + packer.flush()
    # 12-byte encryption header: 11 random bytes, then the CRC's high byte (the password check).
    header = os.urandom(11) + bytes([crc >> 24])
    payload = ZipCryptoCipher(password.encode("utf-8")).encrypt(header + payload)
    raw_name = name.encode("utf-8")
    # version 2.0, flag 1 (encrypted), deflate, DOS time 00:00 / date 1980-01-01
    fields = struct.pack("<HHHHHIII", 20, 1, 8, 0, 0x21, crc, len(payload), len(content))
    local = b"PK\x03\x04" + fields + struct.pack("<HH", len(raw_name), 0) + raw_name + payload
    central = (
        b"PK\x01\x02" + struct.pack("<H", 20) + fields
        + struct.pack("<HHHHHII", len(raw_name), 0, 0, 0, 0, 0, 0) + raw_name
    )
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + end

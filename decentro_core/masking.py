"""Masking of personal data for logs, audit subjects and error messages.

Every log line and audit subject that names a document goes through these helpers:
PAN ``ABCDE****F``, Aadhaar and account numbers to their last four digits, phone and
e-mail partly hidden, names to initials.
"""

from __future__ import annotations

__all__ = [
    "mask_account",
    "mask_aadhaar",
    "mask_email",
    "mask_name",
    "mask_pan",
    "mask_phone",
    "mask_upi",
]


def _last4(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isalnum())
    if len(digits) <= 4:
        return "****"
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_pan(pan: str) -> str:
    """``ABCDE1234F`` → ``ABCDE****F``."""
    pan = pan.strip().upper()
    if len(pan) != 10:
        return "*" * len(pan)
    return f"{pan[:5]}****{pan[-1]}"


def mask_aadhaar(number: str) -> str:
    """Only the last four digits survive: ``********1234``."""
    return _last4(number)


def mask_account(number: str) -> str:
    """Only the last four digits survive: ``********9011``."""
    return _last4(number)


def mask_phone(phone: str) -> str:
    """``9876543210`` → ``******3210`` (country code dropped)."""
    digits = "".join(ch for ch in phone if ch.isdigit())[-10:]
    return _last4(digits)


def mask_email(email: str) -> str:
    """``jane.doe@example.com`` → ``j*******@example.com``."""
    local, sep, domain = email.partition("@")
    if not sep:
        return "*" * len(email)
    return f"{local[:1]}{'*' * max(len(local) - 1, 1)}@{domain}"


def mask_upi(vpa: str) -> str:
    """``charles.babbage@okhdfc`` → ``c**************@okhdfc``."""
    return mask_email(vpa)


def mask_name(name: str) -> str:
    """``Jane Doe`` → ``J*** D**``; a one-letter part is hidden entirely."""
    return " ".join(f"{part[:1]}{'*' * (len(part) - 1)}" if len(part) > 1 else "*" for part in name.split())

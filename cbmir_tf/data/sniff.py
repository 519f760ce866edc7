"""Recognising a DICOM file by its first bytes, without importing pydicom (about half a second).

`cbmir_tf.data.io.read_image` and the archive's file search call `is_dicom` on every file; only
files it accepts import `cbmir_tf.data.dicom`, so a folder of PNGs never loads pydicom.
"""

from __future__ import annotations

import os

__all__ = ["is_dicom", "starts_like_dataset"]


def is_dicom(path: str | os.PathLike) -> bool:
    """True if `path` is a file with the ``DICM`` magic at byte 128 (Part 10 format), or one that
    starts like a DICOM data set written without the preamble (a little-endian group 0002 or
    0008 element, as older equipment writes)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM" or starts_like_dataset(head)


_VRS = {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB", b"OD", b"OF",
        b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM", b"UC", b"UI", b"UL", b"UN",
        b"UR", b"US", b"UT", b"UV"}


def starts_like_dataset(head: bytes) -> bool:
    """Whether `head` starts with a group 0002/0008 element, explicit VR or implicit with a short length."""
    if len(head) < 8 or head[:2] not in (b"\x02\x00", b"\x08\x00"):
        return False
    return head[4:6] in _VRS or int.from_bytes(head[4:8], "little") < 1024

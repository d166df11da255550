"""The SR content tree of a dose report as plain objects, read from bytes or from a pydicom Dataset.

Why: pydicom converts each element it is asked for through several layers, and an RDSR is thousands
of small content items, so reading one through pydicom costs far more than the report logic. The
byte reader here walks a little-endian file (explicit or implicit VR) once, checking as it goes that
every element, item and sequence ends inside the file (pydicom silently returns the part of a cut
file that was there), and decodes only the attributes the dose templates use, the way pydicom
would. Anything it does not handle exactly like pydicom -- another transfer syntax or character
set, an unexpected VR, a multi-valued string, a truncated or malformed file -- raises
:class:`Fallback`, and the caller reads the file through pydicom instead (which also decides the
error reason), so both paths give the same result.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue


class Fallback(Exception):
    """The byte reader cannot vouch for this file; read it with pydicom."""


class Item:
    """One SR content item: what the dose templates read of it."""

    __slots__ = ("children", "code", "concept", "datetime", "name", "num", "text", "uid", "value_type")

    def __init__(self, value_type: Any, name: tuple[str, str, str] | None, code: tuple[str, str, str] | None,
                 num: tuple[Any, str] | None, text: Any, uid: Any, datetime: Any, children: list[Item]):
        self.value_type = value_type
        self.name = name  # concept name (code value, scheme, meaning)
        self.concept = name[0] if name is not None and name[1] == "DCM" else None  # DCM codes only
        self.code = code  # concept code of a CODE item
        self.num = num  # (numeric value as read, unit code value) of a NUM item
        self.text, self.uid, self.datetime = text, uid, datetime
        self.children = children


@dataclass
class Document:
    """The top of an SR document: header attributes (as ``Dataset.get(keyword)`` gives them) and content."""

    has_sop_class: bool
    has_title: bool  # ConceptNameCodeSequence present, even if empty
    title: tuple[str, str, str] | None
    templates: list[str]
    procedure_code_meaning: str | None
    attrs: dict[str, Any]
    children: list[Item] = field(default_factory=list)


# header attributes read by keyword
HEADER = ("SOPClassUID", "SOPInstanceUID", "StudyDescription", "RequestedProcedureDescription",
          "StudyInstanceUID", "SeriesInstanceUID", "PatientID", "PatientName", "PatientSex", "PatientBirthDate",
          "AccessionNumber", "InstitutionName", "StationName", "Manufacturer", "ManufacturerModelName",
          "PerformingPhysicianName", "ContentDate", "ContentTime", "StudyDate", "StudyTime", "CompletionFlag")
T_VALUE_TYPE, T_CONCEPT_NAME, T_CONTENT_SEQ = 0x0040A040, 0x0040A043, 0x0040A730
T_MEASURED, T_NUMERIC, T_UNITS = 0x0040A300, 0x0040A30A, 0x004008EA
T_CONCEPT_CODE, T_TEXT, T_UID, T_DATETIME = 0x0040A168, 0x0040A160, 0x0040A124, 0x0040A120
T_CODE_VALUE, T_SCHEME, T_MEANING, T_LONG_CODE = 0x00080100, 0x00080102, 0x00080104, 0x00080119
T_CHARSET, T_TEMPLATE_SEQ, T_TEMPLATE_ID = 0x00080005, 0x0040A504, 0x0040DB00
T_SOP_CLASS = 0x00080016
T_PROCEDURE_SEQS = (0x0040A372, 0x00081032)  # PerformedProcedureCodeSequence, ProcedureCodeSequence

_HEADER_TAGS: dict[str, int] = {kw: tag_for_keyword(kw) for kw in HEADER}  # type: ignore[misc]
_WANTED_TAGS = [T_VALUE_TYPE, T_CONCEPT_NAME, T_CONTENT_SEQ, T_MEASURED, T_NUMERIC, T_UNITS, T_CONCEPT_CODE,
                T_TEXT, T_UID, T_DATETIME, T_CODE_VALUE, T_SCHEME, T_MEANING, T_LONG_CODE, T_CHARSET,
                T_TEMPLATE_SEQ, T_TEMPLATE_ID, *T_PROCEDURE_SEQS, *_HEADER_TAGS.values()]
# the VR each kept attribute must have (the dictionary's): a file saying otherwise goes to pydicom
_WANTED: dict[int, bytes] = {t: dictionary_VR(t).encode() for t in _WANTED_TAGS}

# ---- byte walk --------------------------------------------------------------------------------
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
                        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"})
_HDR = struct.Struct("<HH2sH")  # group, element, VR, 2-byte length (explicit VR)
_TAG_LEN = struct.Struct("<HHI")  # group, element, 4-byte length (implicit VR, items, delimiters)
_U32 = struct.Struct("<I")
_IMPLICIT, _EXPLICIT = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
_sq_cache: dict[int, bool] = {}
_CODE_SEQS = frozenset({T_CONCEPT_NAME, T_CONCEPT_CODE, T_UNITS})
# parsed code sequences by their bytes, one table per VR encoding (read-only results: safe to share
# between threads; a miss only costs a parse). Bounded: emptied when it grows past _MEMO_MAX.
_MEMO: dict[bool, dict[bytes, list[dict]]] = {True: {}, False: {}}
_MEMO_MAX = 20000


def _is_sq(tag: int) -> bool:
    """Whether an implicit-VR element is a sequence, by the data dictionary (as pydicom decides)."""
    r = _sq_cache.get(tag)
    if r is None:
        try:
            r = dictionary_VR(tag) == "SQ"
        except KeyError:
            r = False
        _sq_cache[tag] = r
    return r


def _dataset(buf: bytes, pos: int, end: int, explicit: bool, undefined: bool) -> tuple[dict, int]:
    """Elements from ``pos`` up to ``end`` (or to the item delimiter when ``undefined``) -> kept values, position.

    Kept values are raw bytes, or lists of item dicts for sequences; every sequence is walked (as
    pydicom does) so a broken one anywhere sends the file to pydicom.
    """
    d: dict[int, Any] = {}
    unpack, u32, wanted, short_vrs, long_vrs = _HDR.unpack_from, _U32.unpack_from, _WANTED, _SHORT_VRS, _LONG_VRS
    while pos < end:
        if pos + 8 > end:
            raise Fallback
        group, elem, vr, short = unpack(buf, pos)
        if group == 0xFFFE:
            if elem == 0xE00D and undefined:
                return d, pos + 8
            raise Fallback
        tag = group << 16 | elem
        if explicit:
            if vr in short_vrs:
                length = short
                pos += 8
            elif vr in long_vrs:
                if pos + 12 > end:
                    raise Fallback
                length = u32(buf, pos + 8)[0]
                pos += 12
            else:
                raise Fallback
            want = wanted.get(tag)
            if want is not None and want != vr:
                raise Fallback
            sq = vr == b"SQ"
        else:
            length = u32(buf, pos + 4)[0]
            pos += 8
            want = wanted.get(tag)
            sq = length == 0xFFFFFFFF or want == b"SQ" or (want is None and _is_sq(tag))
        if sq:
            if want is not None and tag in _CODE_SEQS and length != _UNDEFINED:
                # code sequences repeat byte for byte thousands of times in a report: read each once
                stop = pos + length
                if stop > end:
                    raise Fallback
                memo = _MEMO[explicit]
                key = buf[pos:stop]
                items = memo.get(key)
                if items is None:
                    items, _ = _sequence(buf, pos, length, end, explicit)
                    memo[key] = items
                pos = stop
            else:
                items, pos = _sequence(buf, pos, length, end, explicit)
            if want is not None:
                d[tag] = items
        else:
            stop = pos + length
            if stop > end or length == 0xFFFFFFFF:
                raise Fallback
            if want is not None:
                d[tag] = buf[pos:stop]
            pos = stop
    if undefined:
        raise Fallback  # the data ran out before the item delimiter
    return d, pos


def _sequence(buf: bytes, pos: int, length: int, end: int, explicit: bool) -> tuple[list[dict], int]:
    limit = end if length == _UNDEFINED else pos + length
    if limit > end:
        raise Fallback
    items: list[dict] = []
    unpack = _TAG_LEN.unpack_from
    while pos < limit:
        if pos + 8 > limit:
            raise Fallback
        group, elem, ilen = unpack(buf, pos)
        pos += 8
        if group != 0xFFFE:
            raise Fallback
        if elem == 0xE0DD and length == _UNDEFINED:
            return items, pos
        if elem != 0xE000:
            raise Fallback
        if ilen == _UNDEFINED:
            d, pos = _dataset(buf, pos, limit, explicit, True)
        else:
            stop = pos + ilen
            if stop > limit:
                raise Fallback
            d, pos = _dataset(buf, pos, stop, explicit, False)
        items.append(d)
    if length == _UNDEFINED:
        raise Fallback  # no sequence delimiter before the end
    return items, pos


def _meta(buf: bytes) -> tuple[str, int]:
    """Transfer syntax and the end of the file meta group (always explicit VR little endian)."""
    if len(buf) < 144 or buf[128:132] != b"DICM":
        raise Fallback
    pos, n = 132, len(buf)
    group_end = None
    ts = None
    while pos + 8 <= n and buf[pos:pos + 2] == b"\x02\x00":
        group, elem, vr, short = _HDR.unpack_from(buf, pos)
        if vr in _SHORT_VRS:
            length, pos = short, pos + 8
        elif vr in _LONG_VRS and pos + 12 <= n:
            length, pos = _U32.unpack_from(buf, pos + 8)[0], pos + 12
        else:
            raise Fallback
        if length == _UNDEFINED or pos + length > n:
            raise Fallback
        if elem == 0x0000 and length == 4:
            group_end = pos + 4 + _U32.unpack_from(buf, pos)[0]
        elif elem == 0x0010:
            ts = buf[pos:pos + length].decode("latin-1").rstrip("\0 ")
        pos += length
    if ts is None or (group_end is not None and group_end != pos) or pos + 8 > n:
        raise Fallback
    return ts, pos


# ---- decoding, as pydicom's converters do it --------------------------------------------------
_CODECS = {"": "latin_1", "ISO_IR 6": "latin_1", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}
_TEXT_VRS = {b"SH", b"LO", b"UC", b"LT", b"ST", b"UT", b"PN"}  # decoded with the character set
_SINGLE_VRS = {b"LT", b"ST", b"UT"}  # never split at backslashes


def _decode(raw: bytes | None, vr: bytes, codec: str) -> str | None:
    if raw is None:
        return None
    try:
        if vr == b"PN":
            s = raw.rstrip(b"\0 ").decode(codec)
            if "=" in s:
                raise Fallback  # component groups: leave PersonName's handling to pydicom
        else:
            s = raw.decode(codec if vr in _TEXT_VRS else "latin_1")
    except UnicodeDecodeError as exc:
        raise Fallback from exc
    if "\\" in s and vr not in _SINGLE_VRS:
        raise Fallback  # multi-valued: pydicom gives a MultiValue
    return s.rstrip("\0 ")


class _Builder:
    def __init__(self, codec: str):
        self.codec = codec
        self.codes: dict[tuple, tuple[str, str, str]] = {}  # concept codes repeat: decode each once
        self.by_seq: dict[int, tuple[str, str, str]] = {}

    def s(self, d: dict, tag: int) -> str | None:
        raw = d.get(tag)
        return None if raw is None else _decode(raw, _WANTED[tag], self.codec)

    def code(self, seq: list[dict] | None) -> tuple[str, str, str] | None:
        if not seq:
            return None
        hit = self.by_seq.get(id(seq))  # the same (memoised) sequence object: decoded already
        if hit is not None:
            return hit
        c = seq[0]
        get = c.get
        key = (get(T_CODE_VALUE), get(T_LONG_CODE), get(T_SCHEME), get(T_MEANING), T_CHARSET in c)
        r = self.codes.get(key)
        if r is None:
            if key[4]:
                raise Fallback  # a character set changed inside an item
            s = self.s
            r = (s(c, T_CODE_VALUE) or s(c, T_LONG_CODE) or "", s(c, T_SCHEME) or "", s(c, T_MEANING) or "")
            self.codes[key] = r
        self.by_seq[id(seq)] = r  # the tree holds seq for the whole build, so its id is not reused
        return r

    def item(self, d: dict) -> Item:
        if T_CHARSET in d:
            raise Fallback  # a character set changed inside an item
        get, s = d.get, self.s
        num = None
        mv = get(T_MEASURED)
        if mv:
            m = mv[0]
            if len(mv) > 1:
                raise Fallback  # one value per item: leave the sequence to the reference path
            raw = m.get(T_NUMERIC)
            if raw:  # absent or empty: no value
                text = raw.decode("latin-1")
                try:
                    value: Any = [float(t) for t in text.split("\\")] if "\\" in text else float(text)
                except ValueError as exc:
                    raise Fallback from exc
                units = self.code(m.get(T_UNITS))
                num = (value, units[0] if units else "")
        children = [self.item(c) for c in get(T_CONTENT_SEQ) or ()]
        return Item(s(d, T_VALUE_TYPE), self.code(get(T_CONCEPT_NAME)), self.code(get(T_CONCEPT_CODE)), num,
                    s(d, T_TEXT), s(d, T_UID), s(d, T_DATETIME), children)


def from_bytes(buf: bytes) -> Document:
    """Read a little-endian Part 10 file; raises :class:`Fallback` for anything pydicom should judge."""
    ts, pos = _meta(buf)
    for memo in _MEMO.values():
        if len(memo) > _MEMO_MAX:
            memo.clear()
    if ts == _EXPLICIT:
        explicit = True
    elif ts == _IMPLICIT:
        explicit = False
        if buf[pos + 4:pos + 6] in _SHORT_VRS or buf[pos + 4:pos + 6] in _LONG_VRS:
            raise Fallback  # looks explicit after all: pydicom would switch, so let it
    else:
        raise Fallback
    top, _ = _dataset(buf, pos, len(buf), explicit, False)
    charset = _decode(top.get(T_CHARSET), b"CS", "latin_1")
    codec = _CODECS.get(charset or "")
    if codec is None:
        raise Fallback
    b = _Builder(codec)
    attrs = {kw: b.s(top, tag) for kw, tag in _HEADER_TAGS.items()}
    templates = [(b.s(t, T_TEMPLATE_ID) or "").strip() for t in top.get(T_TEMPLATE_SEQ) or ()]
    meaning = None
    for tag in T_PROCEDURE_SEQS:
        seq = top.get(tag)
        if seq:
            m = b.s(seq[0], T_MEANING)
            if m:
                meaning = m
                break
    return Document(
        has_sop_class=T_SOP_CLASS in top,
        has_title=T_CONCEPT_NAME in top,
        title=b.code(top.get(T_CONCEPT_NAME)),
        templates=templates,
        procedure_code_meaning=meaning,
        attrs=attrs,
        children=[b.item(c) for c in top.get(T_CONTENT_SEQ) or ()],
    )


# ---- the same from a pydicom Dataset (the reference path) -------------------------------------
def _val(ds: Dataset, tag: int) -> Any:
    el = ds.get(tag)
    return None if el is None else el.value


def _code(ds: Dataset, tag: int) -> tuple[str, str, str] | None:
    seq = _val(ds, tag)
    if not seq:
        return None
    c = seq[0]
    value = _val(c, T_CODE_VALUE) or _val(c, T_LONG_CODE) or ""
    return str(value), str(_val(c, T_SCHEME) or ""), str(_val(c, T_MEANING) or "")


def _ds_item(ds: Dataset) -> Item:
    num = None
    mv = _val(ds, T_MEASURED)
    if mv:
        m = mv[0]
        raw = _val(m, T_NUMERIC)
        if len(mv) > 1:  # one value per item (per pulse): gather them, as a multi-valued NumericValue
            raws = [_val(x, T_NUMERIC) for x in mv]
            raw = [v for r in raws if r is not None and r != "" for v in (r if isinstance(r, MultiValue) else [r])]
        elif isinstance(raw, MultiValue):
            raw = list(raw)
        if raw is not None and raw != "" and raw != []:
            units = _code(m, T_UNITS)
            num = (raw, units[0] if units else "")
    children = [_ds_item(c) for c in _val(ds, T_CONTENT_SEQ) or []]
    return Item(_val(ds, T_VALUE_TYPE), _code(ds, T_CONCEPT_NAME), _code(ds, T_CONCEPT_CODE), num,
                _val(ds, T_TEXT), _val(ds, T_UID), _val(ds, T_DATETIME), children)


def from_dataset(ds: Dataset) -> Document:
    """The document as pydicom reads it; conversion errors propagate to the caller."""
    meaning = None
    for key in ("PerformedProcedureCodeSequence", "ProcedureCodeSequence"):
        seq = ds.get(key)
        if seq and seq[0].get("CodeMeaning"):
            meaning = str(seq[0].CodeMeaning)
            break
    return Document(
        has_sop_class="SOPClassUID" in ds,
        has_title=_val(ds, T_CONCEPT_NAME) is not None,
        title=_code(ds, T_CONCEPT_NAME),
        templates=[str(t.get("TemplateIdentifier", "")).strip() for t in ds.get("ContentTemplateSequence", []) or []],
        procedure_code_meaning=meaning,
        attrs={kw: ds.get(kw) for kw in HEADER},
        children=[_ds_item(c) for c in _val(ds, T_CONTENT_SEQ) or []],
    )

"""A minimal, independent OpenIGTLink reader/writer written from the protocol specification
(openigtlink.org, v2 header and TRANSFORM, POINT, IMAGE, POLYDATA, STATUS bodies), used to check
the bridge's bytes without pyigtl: header fields, CRC-64 (ECMA-182 polynomial), big-endian bodies,
the IMAGE centre convention and the coordinate flag."""

from __future__ import annotations

import socket
import struct
import time

import numpy as np

_POLY = 0x42F0E1EBA9EA3693
_MASK = (1 << 64) - 1


def _table() -> list[int]:
    out = []
    for i in range(256):
        c = i << 56
        for _ in range(8):
            c = ((c << 1) ^ _POLY) & _MASK if c & (1 << 63) else (c << 1) & _MASK
        out.append(c)
    return out


_T = _table()


def crc64(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = _T[((crc >> 56) ^ b) & 0xFF] ^ ((crc << 8) & _MASK)
    return crc


def pack(msg_type: str, device: str, content: bytes) -> bytes:
    """A version-1 header (no extended header) + content."""
    now = time.time()
    return struct.pack(">H12s20sIIQQ", 1, msg_type.encode(), device.encode(), int(now), 0, len(content),
                       crc64(content)) + content


def transform(device: str, m: np.ndarray) -> bytes:
    m = np.asarray(m, float)
    vals = [m[0, 0], m[1, 0], m[2, 0], m[0, 1], m[1, 1], m[2, 1], m[0, 2], m[1, 2], m[2, 2], m[0, 3], m[1, 3], m[2, 3]]
    return pack("TRANSFORM", device, struct.pack(">12f", *vals))


def status(device: str, code: int, text: str) -> bytes:
    return pack("STATUS", device, struct.pack(">Hq20s", code, 0, b"") + text.encode() + b"\0")


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return bytes(buf)


def read_message(sock: socket.socket) -> dict:
    head = _recv_exact(sock, 58)
    version, mtype, dev, _ts1, _ts2, size, crc = struct.unpack(">H12s20sIIQQ", head)
    body = _recv_exact(sock, size)
    out = {"version": version, "type": mtype.rstrip(b"\0").decode(), "device": dev.rstrip(b"\0").decode(),
           "crc_ok": crc64(body) == crc}
    content = body
    if version >= 2:
        ext, meta_head, meta_body, _ = struct.unpack(">HHII", body[:12])
        content = body[ext:len(body) - meta_head - meta_body]
    t = out["type"]
    if t == "TRANSFORM":
        v = struct.unpack(">12f", content[:48])
        m = np.eye(4)
        m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = v[0:3], v[3:6], v[6:9], v[9:12]
        out["matrix"] = m
    elif t == "POINT":
        n = len(content) // 136
        pts, names = [], []
        for i in range(n):
            name, _grp, _r, _g, _b, _a, x, y, z, _d, _own = struct.unpack(">64s32s4B3ff20s", content[i * 136:(i + 1) * 136])
            names.append(name.rstrip(b"\0").decode())
            pts.append((x, y, z))
        out["names"], out["points"] = names, np.array(pts)
    elif t == "IMAGE":
        h = struct.unpack(">HBBBBHHH12fHHHHHH", content[:72])
        _ver, ncomp, stype, endian, coord = h[0:5]
        size = np.array(h[5:8])  # i, j, k
        mat = np.array(h[8:20])
        tcol, scol, ncol, centre = mat[0:3], mat[3:6], mat[6:9], mat[9:12]
        aff = np.eye(4)
        aff[:3, 0], aff[:3, 1], aff[:3, 2] = tcol, scol, ncol
        aff[:3, 3] = centre - aff[:3, :3] @ ((size - 1) / 2.0)  # the header holds the image centre
        dtype = {2: "i1", 3: "u1", 4: "i2", 5: "u2", 6: "i4", 7: "u4", 10: "f4", 11: "f8"}[stype]
        dt = np.dtype(("<" if endian == 2 else ">") + dtype)
        out["coord"] = {1: "RAS", 2: "LPS"}[coord]
        out["ncomp"] = ncomp
        out["affine"] = aff
        out["array"] = np.frombuffer(content[72:], dtype=dt).reshape(size[2], size[1], size[0])
    elif t == "POLYDATA":
        hd = struct.unpack(">10I", content[:40])
        npts, _nv, sv, _nl, sl, npoly, spoly = hd[0:7]
        off = 40
        out["points"] = np.frombuffer(content[off:off + npts * 12], ">f4").reshape(-1, 3).astype(float)
        off += npts * 12 + sv + sl
        polys = np.frombuffer(content[off:off + spoly], ">u4").reshape(npoly, -1)
        out["triangles"] = polys[:, 1:].astype(np.int64)
    elif t == "STRING":
        _enc, n = struct.unpack(">HH", content[:4])
        out["string"] = content[4:4 + n].decode()
    return out

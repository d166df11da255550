"""The OpenIGTLink bridge (pyigtl): serves a plan to any OpenIGTLink client (3D Slicer's
OpenIGTLinkIF, a robot controller) and receives tracked tool poses (TRANSFORM) and STATUS.

Frames: everything sent is in RAS, as Slicer's OpenIGTLinkIF expects (IMAGE messages also carry
the RAS flag in their header); OpenIR's LPS is converted here and nowhere else (`frames`).
Incoming TRANSFORMs are tracker-frame poses, not converted (the registration maps them).

What is sent (device names at most 20 characters):
- ``CT``: IMAGE, int16 voxels [k, j, i], ijk -> RAS matrix (OpenIGTLink puts the image centre in it);
- ``PlanPoints``: POINT, each probe's ``P<n> entry`` and ``P<n> tip`` (group ``entry``/``tip``) and the
  targets (group ``target``, e.g. tumour centres);
- ``P<n>Trajectory``: TRANSFORM, origin at the planned tip, +z the insertion direction;
- one POLYDATA per surface (tumour, zones, forbidden structures), triangles, RAS mm;
- for a robot, ``RobotTarget`` and ``RobotApproach`` TRANSFORMs in the robot's own frame (not RAS).

pyigtl keeps only the latest message per device name; the bridge queues every incoming TRANSFORM
and STATUS instead, so no pose is dropped between two reads. The connection handler is the bridge's
own (`_Handler`): pyigtl's keeps spinning on a closed socket and never serves a second client. pyigtl does not implement STATUS:
`StatusMessage` does (OpenIGTLink v2 STATUS body) and is registered with pyigtl's message table.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import signal
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pyigtl
from pyigtl import messages as igtl_messages

from openir.core import Volume

from .frames import lps_to_ras_matrix, lps_to_ras_points, needle_pose
from .models import GuidanceFrame, PlannedPath

MAX_NAME = 20
logger = logging.getLogger(__name__)


class StatusMessage(pyigtl.MessageBase):
    """OpenIGTLink STATUS: code (1 = OK), subcode, error name (20 chars), status text."""

    def __init__(self, code: int = 1, subcode: int = 0, error_name: str = "", status: str = "",
                 timestamp: float | None = None, device_name: str | None = None):
        super().__init__(timestamp=timestamp, device_name=device_name)
        self._message_type = "STATUS"
        self.code, self.subcode, self.error_name, self.status = code, subcode, error_name, status
        self._valid_message = True

    def content_asstring(self) -> str:
        return f"Code: {self.code} Subcode: {self.subcode} Error: {self.error_name} Status: {self.status}"

    def _pack_content(self) -> bytes:
        return (struct.pack("> H q 20s", self.code, self.subcode, self.error_name.encode("ascii", "replace")[:20])
                + self.status.encode("utf8") + b"\0")

    def _unpack_content(self, content: bytes) -> None:
        self.code, self.subcode, name = struct.unpack("> H q 20s", content[:30])
        self.error_name = name.rstrip(b"\0").decode("ascii", "replace")
        self.status = content[30:].split(b"\0", 1)[0].decode("utf8", "replace")


igtl_messages.message_type_to_class_constructor.setdefault("STATUS", StatusMessage)


class _Handler(socketserver.BaseRequestHandler):
    """One client connection. Unlike pyigtl's handler it returns when the client leaves (pyigtl's
    keeps spinning on the closed socket), so the next client is served, and it logs instead of
    printing tracebacks."""

    def handle(self) -> None:
        srv = self.server
        sock = self.request
        srv._connected = True
        srv.n_connections += 1
        sock.settimeout(srv.poll_s)
        with contextlib.suppress(OSError):  # small messages go out at once (no Nagle / delayed-ACK stall)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while not srv.communication_thread_stop_requested:
                try:
                    peek = sock.recv(1, socket.MSG_PEEK)
                except (TimeoutError, BlockingIOError):
                    peek = None
                if peek == b"":
                    break  # the client closed the connection
                if peek is not None:
                    while srv._receive_message_from_socket(sock):
                        if srv.communication_thread_stop_requested:
                            break
                while srv._send_queued_message_from_socket(sock):
                    pass
        except OSError as exc:
            logger.info("OpenIGTLink client left: %s", exc)
        finally:
            srv._connected = False


class _Server(pyigtl.OpenIGTLinkServer):
    """pyigtl's server with its own connection handler (`_Handler`) and two socket timeouts changed.
    pyigtl polls the client socket with a 10 ms timeout, and Python applies a socket's timeout to a
    whole ``sendall``: a 10 MB CT then fails on a busy machine and the client is dropped. Sending
    gets ``send_timeout_s``; receiving polls every ``poll_s`` (2 ms), which also shortens the pose ->
    guidance round trip."""

    send_timeout_s = 60.0
    poll_s = 0.002

    def __init__(self, *args, **kwargs):
        self.n_connections = 0
        super().__init__(*args, start_now=False, **kwargs)
        self.RequestHandlerClass = _Handler
        self.start()

    def _send_queued_message_from_socket(self, sock):  # pyigtl's hook
        old = sock.gettimeout()
        sock.settimeout(self.send_timeout_s)
        try:
            return super()._send_queued_message_from_socket(sock)
        finally:
            sock.settimeout(old)


class _Queueing(dict):
    """pyigtl's incoming table (latest per device) that also queues every message in arrival order."""

    def __init__(self, queue: collections.deque):
        super().__init__()
        self.queue = queue

    def __setitem__(self, key, value) -> None:
        self.queue.append(value)
        super().__setitem__(key, value)


@dataclass
class ReceivedPose:
    device: str
    timestamp: float
    matrix: np.ndarray
    received: float  # perf_counter() when taken from the queue


@dataclass
class PlanContent:
    """What the bridge serves: the path(s), the CT and named surfaces (LPS)."""

    paths: list[PlannedPath]
    ct: Volume | None = None
    surfaces: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    targets: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # e.g. tumour centres (LPS)
    extra_transforms: dict[str, np.ndarray] = field(default_factory=dict)  # sent as they are (e.g. robot frame)


def _name(s: str) -> str:
    return s.encode("ascii", "replace").decode()[:MAX_NAME]


def plan_messages(content: PlanContent) -> list[pyigtl.MessageBase]:
    """The pyigtl messages (RAS) for a plan: IMAGE, POINT, TRANSFORM per path, POLYDATA per surface."""
    out: list[pyigtl.MessageBase] = []
    if content.ct is not None:
        arr = np.ascontiguousarray(content.ct.array)
        if arr.dtype not in (np.int16, np.uint8, np.uint16, np.int32, np.float32, np.float64, np.int8, np.uint32):
            arr = arr.astype(np.float32)
        out.append(pyigtl.ImageMessage(arr, ijk_to_world_matrix=lps_to_ras_matrix(content.ct.affine),
                                       world_coordinate_system="ras", device_name="CT"))
    names, pts, groups = [], [], []
    for p in content.paths:
        names += [f"P{p.probe_order} entry", f"P{p.probe_order} tip"]
        pts += [p.entry_lps, p.tip_lps]
        groups += ["entry", "tip"]
        out.append(pyigtl.TransformMessage(lps_to_ras_matrix(needle_pose(p.tip_lps, p.direction_lps)),
                                           device_name=_name(f"P{p.probe_order}Trajectory")))
    for name, xyz in content.targets.items():
        names.append(name)
        pts.append(xyz)
        groups.append("target")
    if pts:
        out.append(pyigtl.PointMessage(positions=lps_to_ras_points(np.asarray(pts, float)), names=names,
                                       groups=groups, device_name="PlanPoints"))
    for name, m in content.extra_transforms.items():
        out.append(pyigtl.TransformMessage(np.asarray(m, float), device_name=_name(name)))
    for name, (verts, faces) in content.surfaces.items():
        if len(faces) == 0:
            continue
        polys = np.hstack([np.full((len(faces), 1), 3, np.uint32), faces.astype(np.uint32)]).ravel()
        out.append(pyigtl.PolyDataMessage(points=lps_to_ras_points(verts).astype(np.float32), polygons=polys,
                                          device_name=_name(name)))
    return out


class Bridge:
    """An OpenIGTLink server on ``host:port`` (port 0: any free port; see ``.port``).

    One client at a time; a client that leaves can be followed by another. `serve` sends messages;
    `take` returns the queued poses and statuses; `send_guidance` returns guidance as a STRING
    (JSON) and the needle pose as a TRANSFORM in RAS.
    """

    def __init__(self, port: int = 18944, host: str = "127.0.0.1"):
        self._queue: collections.deque = collections.deque()
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} \
            if threading.current_thread() is threading.main_thread() else {}
        self.server = _Server(port=port, local_server=(host == "127.0.0.1"), iface=host)
        for s, h in handlers.items():  # pyigtl installs signal handlers; keep the caller's
            signal.signal(s, h)
        self.server.incoming_messages = _Queueing(self._queue)
        self.port = int(self.server.server_address[1])
        self.statuses: list[StatusMessage] = []
        self.pending: list[pyigtl.MessageBase] = []
        self._served_for = 0

    def offer(self, msgs: list[pyigtl.MessageBase]) -> None:
        """Messages (the plan) to send to every client that connects (see `poll`)."""
        self.pending = list(msgs)
        self._served_for = 0

    def poll(self) -> bool:
        """Send the offered messages if a new client is connected; True when they went out."""
        n = self.server.n_connections
        if self.pending and self.server.is_connected() and n > self._served_for:
            self._served_for = n
            self.serve(self.pending)
            return True
        return False

    def wait_for_client(self, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while not self.server.is_connected():
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    def serve(self, msgs: list[pyigtl.MessageBase]) -> None:
        for m in msgs:
            self.server.send_message(m, wait=True)

    def take(self) -> list[ReceivedPose]:
        """Every TRANSFORM received since the last call, in arrival order (STATUS go to ``statuses``)."""
        out: list[ReceivedPose] = []
        while self._queue:
            m = self._queue.popleft()
            if isinstance(m, pyigtl.TransformMessage):
                out.append(ReceivedPose(m.device_name, float(m.timestamp), np.asarray(m.matrix, float),
                                        time.perf_counter()))
            elif isinstance(m, StatusMessage):
                self.statuses.append(m)
        return out

    def send_guidance(self, frame: GuidanceFrame) -> None:
        self.server.send_message(pyigtl.StringMessage(frame.model_dump_json(exclude={"clearance_mm",
                                                                                       "course_clearance_mm"}),
                                                      device_name="Guidance"), wait=False)
        if frame.tip_lps is not None and frame.direction_lps is not None:
            self.server.send_message(pyigtl.TransformMessage(
                lps_to_ras_matrix(needle_pose(frame.tip_lps, frame.direction_lps)), device_name="NeedleToRAS"), wait=False)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.server.stop()

"""The bridge on loopback, checked by two independent clients: a hand-written OpenIGTLink reader
(raw socket, CRC verified) and pyigtl's own client. Every point and transform must equal the plan
within 0.01 mm (converted back from RAS) and the CT must come back voxel for voxel."""

from __future__ import annotations

import socket
import time

import numpy as np
import pyigtl
import pytest

from openir.navigate import (
    Bridge,
    PlanContent,
    StatusMessage,
    label_surface,
    needle_pose,
    plan_messages,
    planned_path,
)

from . import igtl_raw
from .phantom import phantom, plan

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def content():
    ct, labels = phantom()
    path = planned_path(plan())
    surf = {"tumour_1": label_surface(labels, "tumour_1"), "portal_vein": label_surface(labels, "portal_vein")}
    return ct, labels, path, PlanContent(paths=[path], ct=ct, surfaces=surf)


def _check_plan(msgs: dict, ct, path, surfaces) -> None:
    img = msgs["CT"]
    assert img["coord"] == "RAS" and img["crc_ok"]
    assert img["array"].dtype == np.int16 and np.array_equal(img["array"], ct.array)  # voxel for voxel
    lps_affine = LPS_TO_RAS @ img["affine"]  # back to LPS
    assert np.abs(lps_affine - ct.affine).max() < 1e-3
    pts = msgs["PlanPoints"]
    assert pts["names"] == ["P1 entry", "P1 tip"]
    back = pts["points"] * [-1, -1, 1]
    assert np.abs(back - np.array([path.entry_lps, path.tip_lps])).max() < 0.01
    tr = LPS_TO_RAS @ msgs["P1Trajectory"]["matrix"]
    assert np.abs(tr[:3, 3] - path.tip_lps).max() < 0.01
    assert np.abs(tr[:3, 2] - path.direction_lps).max() < 1e-5  # +z = insertion direction
    assert abs(np.linalg.det(tr[:3, :3]) - 1) < 1e-5
    for name, (verts, faces) in surfaces.items():
        poly = msgs[name]
        assert poly["crc_ok"]
        assert np.abs(poly["points"] * [-1, -1, 1] - verts).max() < 0.01
        assert np.array_equal(poly["triangles"], faces)


def test_round_trip_with_a_hand_written_reader(content):
    ct, _labels, path, pc = content
    bridge = Bridge(port=0)
    try:
        with socket.create_connection(("127.0.0.1", bridge.port), timeout=10) as sock:
            assert bridge.wait_for_client(5)
            msgs = plan_messages(pc)
            bridge.serve(msgs)
            got = {}
            while len(got) < len(msgs):
                m = igtl_raw.read_message(sock)
                assert m["crc_ok"], m["device"]
                got[m["device"]] = m
            _check_plan(got, ct, path, pc.surfaces)
            # poses and a status from the client reach the bridge, every one, in order
            poses = [needle_pose(np.array(path.tip_lps) + [0, 0, 0.5 * i], path.direction_lps) for i in range(200)]
            sock.sendall(igtl_raw.status("Tracker", 1, "tracking OK"))
            sock.sendall(b"".join(igtl_raw.transform("NeedleToTracker", p) for p in poses))
            received = []
            end = time.monotonic() + 10
            while len(received) < len(poses) and time.monotonic() < end:
                received += bridge.take()
                time.sleep(0.01)
            assert len(received) == len(poses)  # pyigtl alone would keep only the latest per device
            assert all(r.device == "NeedleToTracker" for r in received)
            assert max(np.abs(r.matrix - p).max() for r, p in zip(received, poses, strict=True)) < 1e-4
            assert bridge.statuses and bridge.statuses[0].status == "tracking OK" and bridge.statuses[0].code == 1
    finally:
        bridge.close()


def test_round_trip_with_pyigtl_client(content):
    ct, _labels, path, pc = content
    bridge = Bridge(port=0)
    client = pyigtl.OpenIGTLinkClient(host="127.0.0.1", port=bridge.port)
    try:
        assert bridge.wait_for_client(5)
        bridge.serve(plan_messages(PlanContent(paths=pc.paths, ct=pc.ct)))
        img = client.wait_for_message("CT", timeout=10)
        tr = client.wait_for_message("P1Trajectory", timeout=5)
        pts = client.wait_for_message("PlanPoints", timeout=5)
        assert img is not None and tr is not None and pts is not None
        assert img.world_coordinate_system == "ras" and np.array_equal(img.image, ct.array)
        assert np.abs(LPS_TO_RAS @ img.ijk_to_world_matrix - ct.affine).max() < 1e-3
        assert np.abs((LPS_TO_RAS @ tr.matrix)[:3, 3] - path.tip_lps).max() < 0.01
        assert np.abs(np.asarray(pts.positions[0]) * [-1, -1, 1] - path.entry_lps).max() < 0.01
        client.send_message(StatusMessage(code=1, status="robot ready", device_name="Robot"), wait=True)
        end = time.monotonic() + 5
        while not bridge.statuses and time.monotonic() < end:
            bridge.take()
            time.sleep(0.01)
        assert bridge.statuses[0].status == "robot ready"
    finally:
        client.stop()
        bridge.close()


def test_status_message_packs_the_specified_layout():
    m = StatusMessage(code=13, subcode=-2, error_name="ConfigError", status="bad", device_name="X")
    raw = m.pack()
    body = raw[58:]
    assert len(body) == 2 + 8 + 20 + 4 and body[-1:] == b"\0"
    back = StatusMessage()
    back.unpack(pyigtl.MessageBase.parse_header(raw[:58]), body)
    assert (back.code, back.subcode, back.error_name, back.status) == (13, -2, "ConfigError", "bad")


def test_a_second_client_gets_the_plan_after_the_first_leaves(content):
    _ct, _labels, path, _pc = content
    bridge = Bridge(port=0)
    try:
        bridge.offer(plan_messages(PlanContent(paths=[path])))
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", bridge.port), timeout=10) as sock:
                end = time.monotonic() + 10
                while not bridge.poll() and time.monotonic() < end:
                    time.sleep(0.01)
                got = {igtl_raw.read_message(sock)["device"] for _ in range(2)}
                assert got == {"P1Trajectory", "PlanPoints"}
            end = time.monotonic() + 10
            while bridge.server.is_connected() and time.monotonic() < end:  # the handler saw the client leave
                time.sleep(0.01)
            assert not bridge.server.is_connected()
        assert bridge.server.n_connections == 2
    finally:
        bridge.close()

"""Concurrent importers and receivers: real subprocesses and real DICOM associations.

Bars (issue 18): 4 processes importing the same folder into a fresh store, and 16 concurrent
C-STOREs of one report: 0 errors, 1 copy stored, every send acknowledged.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import uuid

from openir.dose import DoseStore
from openir.phantom.dose_reports import synthetic_ct_rdsr, synthetic_xray_rdsr

N_PROC = 4


def _bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _folder(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(5):
        (d / f"x{i}.dcm").write_bytes(_bytes(synthetic_xray_rdsr(6, seed=10 + i, patient_id=f"P{i}")))
    # a partial and the cumulative report of one study: must end superseded, not double counted
    (d / "partial.dcm").write_bytes(_bytes(synthetic_xray_rdsr(8, seed=3, include_events=3)))
    (d / "full.dcm").write_bytes(_bytes(synthetic_xray_rdsr(8, seed=3)))
    (d / "ct.dcm").write_bytes(_bytes(synthetic_ct_rdsr(3, seed=2)))
    good = _bytes(synthetic_xray_rdsr(4, seed=99))
    (d / "cut.dcm").write_bytes(good[: len(good) // 2])  # quarantined by every process: one row
    (d / "LICENSE").write_text("MIT License\n\nPermission is hereby granted...\n")  # skipped
    return d, 8  # reports stored (one of them superseded)


def _import_concurrently(tmp_path, url: str, folder):
    env = {**os.environ, "OPENIR_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "openir.cli.dose", "import", str(folder), "--db", url, "--root", str(tmp_path / "root")]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(N_PROC)]
    return [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]


def _check(tmp_path, url: str, results, n_reports: int) -> None:
    for rc, out, err in results:
        assert rc == 2, out + err  # 2: the cut file is quarantined; anything else is a crash
        assert "Traceback" not in err and "Error" not in err, err
        assert "skipped" in out and "LICENSE" in out, out
    store = DoseStore(url, tmp_path / "root", skin_dose=False)
    try:
        all_reports = store.reports(include_superseded=True)
        assert len(all_reports) == n_reports == len({r.sop_instance_uid for r in all_reports})
        assert len(store.reports()) == n_reports - 1  # the partial is superseded by its cumulative report
        assert store.count_events() == 5 * 6 + 8 + 3
        q = store.quarantined()
        assert len(q) == 1 and q[0]["reason"] == "truncated"
    finally:
        store.close()
    files = list((tmp_path / "root" / "files").rglob("*"))
    assert len([f for f in files if f.is_file()]) == n_reports
    assert not [f for f in (tmp_path / "root").rglob("*.tmp")]  # no temporary file left behind


def test_dose_four_importers_fresh_sqlite_store(tmp_path):
    folder, n = _folder(tmp_path)
    url = f"sqlite:///{tmp_path / 'dose.db'}"
    _check(tmp_path, url, _import_concurrently(tmp_path, url, folder), n)


def test_dose_four_importers_fresh_postgres_store(tmp_path, postgres_url):
    import sqlalchemy as sa

    schema = f"dose_conc_{uuid.uuid4().hex[:10]}"  # a fresh, private store in the shared test database
    admin = sa.create_engine(postgres_url)
    with admin.begin() as c:
        c.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    try:
        folder, n = _folder(tmp_path)
        _check(tmp_path, url, _import_concurrently(tmp_path, url, folder), n)
    finally:
        with admin.begin() as c:
            c.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_dose_two_stores_in_threads_quarantine_one_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'dose.db'}"
    good = _bytes(synthetic_xray_rdsr(4, seed=5))
    bad = good[: len(good) // 3]
    stores = [DoseStore(url, tmp_path / "root", skin_dose=False) for _ in range(2)]
    out: list = []
    barrier = threading.Barrier(8)

    def work(st):
        barrier.wait()
        out.append(st.import_bytes(bad, "bad.dcm").status)
        out.append(st.import_bytes(good, "good.dcm").status)

    threads = [threading.Thread(target=work, args=(stores[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert out.count("quarantined") == 8 and out.count("stored") == 1 and out.count("duplicate") == 7
        assert len(stores[0].quarantined()) == 1 and len(stores[1].reports()) == 1
    finally:
        for st in stores:
            st.close()


def test_dose_sixteen_concurrent_cstores_of_one_report(tmp_path):
    from pynetdicom import AE

    from openir.dose.rdsr import SR_SOP_CLASSES
    from openir.dose.receiver import DoseReceiver

    store = DoseStore(f"sqlite:///{tmp_path / 'dose.db'}", tmp_path / "root", skin_dose=False)
    rx = DoseReceiver(store)
    rx.ae.maximum_associations = 32
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rx.start("127.0.0.1", port)
    ds = synthetic_xray_rdsr(10, seed=8)
    data = _bytes(ds)
    statuses: list[int] = []
    errors: list[str] = []
    barrier = threading.Barrier(16)

    def send():
        import pydicom

        ae = AE(ae_title="SCU")
        for uid in SR_SOP_CLASSES:
            ae.add_requested_context(uid)
        dset = pydicom.dcmread(io.BytesIO(data))
        barrier.wait()
        assoc = ae.associate("127.0.0.1", port, ae_title="OPENIR_DOSE")
        if not assoc.is_established:
            errors.append("association refused")
            return
        try:
            st = assoc.send_c_store(dset)
            statuses.append(int(st.Status) if st else -1)
        finally:
            assoc.release()

    threads = [threading.Thread(target=send) for _ in range(16)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        rx.stop()  # drains the import queue
    try:
        assert not errors and statuses == [0x0000] * 16
        reports = store.reports(include_superseded=True)
        assert [r.sop_instance_uid for r in reports] == [ds.SOPInstanceUID]
        assert store.count_events() == 10
        assert not list(rx.incoming.glob("*")), "every received copy was imported and removed"
    finally:
        store.close()

"""The dose store: reports, events, alerts and quarantined files in SQL, original files on disk.

* One import = one transaction. Re-importing a SOP instance is a no-op (idempotent by UID).
* Supersession: a report whose irradiation events include all events of an earlier report of the
  same study and device (a cumulative report after a partial one) replaces it; the earlier row is
  kept but marked ``superseded_by`` so totals never count the same event twice. A report that
  arrives after its own cumulative successor is stored already superseded.
* Originals are kept in a content-addressed folder (``files/ab/<sha256>.dcm``); files that are not
  usable dose reports go to ``quarantine/`` with a row saying why, never silently dropped. Reports
  with negative or absurd values (``plausibility``) are quarantined too, with the reason.
* QA and phantom studies (``qa``) are stored with ``qa_reason`` set and left out of the frame that
  reference levels are computed from; ``mark_qa`` overrides the rule for one study.
* Any number of processes and threads may import into one store at once (SQLite or PostgreSQL):
  tables are created idempotently (PostgreSQL: under an advisory lock; both: retried when another
  process created them first), a report or quarantined file committed meanwhile by another writer
  is a duplicate, not an error, and temporary file names are unique per process and thread.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from openir.core import get_settings

from .alerts import AlertHook, AlertThresholds, load_thresholds, patient_alerts, procedure_alerts
from .models import DoseAlert, DoseReport
from .plausibility import PlausibilityRules, load_rules, problems
from .qa import QARules, load_qa_rules, qa_reason
from .rdsr import RDSRError, parse_rdsr
from .reference_levels import procedure_name, study_ctdivol
from .skin_dose import peak_skin_dose


class Base(DeclarativeBase):
    pass


class ReportRow(Base):
    __tablename__ = "dose_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(sa.String(64), unique=True, index=True)
    study_instance_uid: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    device_uid: Mapped[str | None] = mapped_column(sa.String(128))
    kind: Mapped[str] = mapped_column(sa.String(16))
    patient_id: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    procedure: Mapped[str | None] = mapped_column(sa.String(256))
    facility: Mapped[str | None] = mapped_column(sa.String(256))
    room: Mapped[str | None] = mapped_column(sa.String(256))
    operator: Mapped[str | None] = mapped_column(sa.String(256))
    performed_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    n_events: Mapped[int] = mapped_column(sa.Integer)
    kap_total_gy_cm2: Mapped[float | None] = mapped_column(sa.Float)
    dose_rp_total_gy: Mapped[float | None] = mapped_column(sa.Float)
    fluoro_time_s: Mapped[float | None] = mapped_column(sa.Float)
    dlp_total_mgy_cm: Mapped[float | None] = mapped_column(sa.Float)
    ctdivol_mgy: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    peak_skin_dose_gy: Mapped[float | None] = mapped_column(sa.Float)
    qa_reason: Mapped[str | None] = mapped_column(sa.String(512), nullable=True)
    superseded_by: Mapped[int | None] = mapped_column(sa.ForeignKey("dose_reports.id"), nullable=True)
    file_sha256: Mapped[str] = mapped_column(sa.String(64))
    imported_at: Mapped[datetime] = mapped_column(sa.DateTime)
    report_json: Mapped[str] = mapped_column(sa.Text)


class EventRow(Base):
    __tablename__ = "dose_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("dose_reports.id"), index=True)
    event_uid: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    event_type: Mapped[str | None] = mapped_column(sa.String(64))
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    plane: Mapped[str] = mapped_column(sa.String(8))
    kap_gy_cm2: Mapped[float | None] = mapped_column(sa.Float)
    dose_rp_gy: Mapped[float | None] = mapped_column(sa.Float)
    ctdivol_mgy: Mapped[float | None] = mapped_column(sa.Float)
    dlp_mgy_cm: Mapped[float | None] = mapped_column(sa.Float)


class AlertRow(Base):
    __tablename__ = "dose_alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int | None] = mapped_column(sa.ForeignKey("dose_reports.id"))
    patient_id: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    scope: Mapped[str] = mapped_column(sa.String(16))
    metric: Mapped[str] = mapped_column(sa.String(32))
    value: Mapped[float] = mapped_column(sa.Float)
    threshold: Mapped[float] = mapped_column(sa.Float)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    alert_json: Mapped[str] = mapped_column(sa.Text)


class QuarantineRow(Base):
    __tablename__ = "dose_quarantine"
    id: Mapped[int] = mapped_column(primary_key=True)
    file_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    original_name: Mapped[str] = mapped_column(sa.String(1024))
    reason: Mapped[str] = mapped_column(sa.String(32))
    message: Mapped[str] = mapped_column(sa.Text)
    path: Mapped[str] = mapped_column(sa.String(1024))
    quarantined_at: Mapped[datetime] = mapped_column(sa.DateTime)


# columns added after the first release: added to an existing table on open (name -> SQL type)
_PG_LOCK_KEY = 0x0D05E  # advisory lock id of the dose tables' creation (PostgreSQL)
# the skippable reasons: a stray file that is no DICOM at all, or DICOM that is no dose report
SKIPPABLE = ("not_dicom", "not_dose_report")


@dataclass
class ImportResult:
    """What one import did: status is stored | duplicate | superseded | quarantined | skipped."""

    source: str
    status: str
    sop_instance_uid: str | None = None
    message: str = ""
    alerts: list[DoseAlert] = field(default_factory=list)


class StoredAlert(DoseAlert):
    """A stored alert: the alert itself plus its row id (to acknowledge it), when it was raised,
    and the facility and room of the report that raised it (to route it to its hospital)."""

    id: int
    created_at: datetime
    facility: str | None = None
    room: str | None = None


class ReportEntry(BaseModel):
    """One stored dose report's totals, as a patient's dose history lists them."""

    sop_instance_uid: str
    performed_at: datetime | None
    procedure: str | None
    facility: str | None
    room: str | None
    kap_total_gy_cm2: float | None
    dose_rp_total_gy: float | None
    fluoro_time_s: float | None
    dlp_total_mgy_cm: float | None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def durable_write(path: Path, data: bytes) -> None:
    """Write ``data`` so that after return it survives a crash: temp file, fsync, atomic rename.

    The temporary name is unique per process, thread and call, so concurrent writers of the same
    file (two receivers' threads, two importers) never write into each other's temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:12]}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class DoseStore:
    """SQL store of dose reports (own ``dose_`` tables) plus a file root for originals.

    ``url`` defaults to the OpenIR database (SQLite under $OPENIR_HOME), ``root`` to
    ``$OPENIR_STORAGE/dose`` (default ``$OPENIR_HOME/dose``). ``plausibility`` and ``qa_rules`` default to the packaged rule files.

    >>> import tempfile
    >>> from openir.phantom import synthetic_xray_rdsr
    >>> d = tempfile.mkdtemp()
    >>> store = DoseStore(f"sqlite:///{d}/dose.db", d, skin_dose=False)
    >>> synthetic_xray_rdsr(4).save_as(f"{d}/r.dcm", enforce_file_format=True)
    >>> store.import_file(f"{d}/r.dcm").status, store.import_file(f"{d}/r.dcm").status
    ('stored', 'duplicate')
    >>> store.close()
    """

    def __init__(self, url: str | None = None, root: str | Path | None = None,
                 thresholds: AlertThresholds | None = None, hooks: Iterable[AlertHook] = (),
                 skin_dose: bool = True, plausibility: PlausibilityRules | None = None,
                 qa_rules: QARules | None = None):
        settings = get_settings()
        self.root = Path(root) if root else settings.storage_root / "dose"
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = url or settings.effective_database_url
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(self.url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.thresholds = thresholds or load_thresholds()
        self.plausibility = plausibility or load_rules()
        self.qa_rules = qa_rules or load_qa_rules()
        self._create_tables()
        self.hooks = list(hooks)
        self.skin_dose = skin_dose
        self.hook_errors: list[str] = []

    def _create_tables(self) -> None:
        """Bring the store's tables to the newest migration (``dose/migrations``, version table
        ``alembic_version_dose``), safe when several processes open a new store at once. A store made
        before migrations (tables, no version table) is stamped at the revision its columns match,
        then upgraded (later columns added and filled in from the stored reports)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        for attempt in range(20):
            try:
                with self.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                    cfg.attributes["connection"] = conn
                    names = set(sa.inspect(conn).get_table_names())
                    if ReportRow.__tablename__ in names and "alembic_version_dose" not in names:
                        have = {c["name"] for c in sa.inspect(conn).get_columns(ReportRow.__tablename__)}
                        command.stamp(cfg, "dose_0002" if {"ctdivol_mgy", "qa_reason"} <= have else "dose_0001")
                    command.upgrade(cfg, "head")
                return
            except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
                # another process created a table, index or column between our check and our CREATE
                if attempt == 19:
                    raise
                time.sleep(0.02 * (attempt + 1))

    # ---- import ----------------------------------------------------------------------------
    def import_file(self, path: str | Path, *, skip: Collection[str] = ()) -> ImportResult:
        """Import one file; files failing for a reason in ``skip`` (e.g. :data:`SKIPPABLE`) are
        reported as ``skipped`` and left alone instead of quarantined."""
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            return ImportResult(str(p), "skipped", None, f"cannot read: {exc.strerror or exc}")
        return self.import_bytes(data, name=str(p), skip=skip)

    def import_bytes(self, data: bytes, name: str = "<bytes>", *, skip: Collection[str] = ()) -> ImportResult:
        sha = hashlib.sha256(data).hexdigest()
        try:
            report = parse_rdsr(data, source=name)
        except RDSRError as exc:
            if exc.reason in skip:
                return ImportResult(name, "skipped", None, str(exc))
            return self._quarantine(data, sha, name, exc.reason, str(exc))
        bad = problems(report, self.plausibility)
        if bad:
            return self._quarantine(data, sha, name, "implausible", f"{name}: implausible: " + "; ".join(bad))
        for attempt in range(5):
            try:
                return self._store(data, sha, name, report)
            except sa.exc.OperationalError:  # SQLite busy past its timeout under heavy concurrency
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def _store(self, data: bytes, sha: str, name: str, report: DoseReport) -> ImportResult:
        with Session(self.engine) as s:
            if s.scalar(sa.select(ReportRow.id).where(ReportRow.sop_instance_uid == report.sop_instance_uid)):
                return ImportResult(name, "duplicate", report.sop_instance_uid, "already stored")
        stored = self._keep_file(data, sha)
        report.source = str(stored)
        psd = None
        if self.skin_dose and report.kind == "projection" and report.events:
            psd = peak_skin_dose(report).peak_skin_dose_gy
        try:
            with Session(self.engine) as s, s.begin():
                if self.engine.dialect.name == "postgresql" and report.study_instance_uid:
                    # one study's reports are compared for supersession one writer at a time
                    key = int.from_bytes(hashlib.sha256(report.study_instance_uid.encode()).digest()[:8], "big", signed=True)
                    s.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                row = self._add_report(s, report, sha, psd)
                status = self._supersede(s, row, report)
                alerts = []
                if row.superseded_by is None:
                    alerts = self._alerts(s, row, report, psd)
        except sa.exc.IntegrityError:  # the same SOP instance committed meanwhile by another writer
            return ImportResult(name, "duplicate", report.sop_instance_uid, "already stored")
        for a in alerts:
            for hook in self.hooks:
                try:
                    hook(a)
                except Exception as exc:  # a hook must never lose the stored alert
                    self.hook_errors.append(f"{getattr(hook, '__name__', hook)}: {exc}")
        return ImportResult(name, status, report.sop_instance_uid, "", alerts)

    def _keep_file(self, data: bytes, sha: str) -> Path:
        dest = self.root / "files" / sha[:2] / f"{sha}.dcm"
        if not dest.exists():
            durable_write(dest, data)
        return dest

    def _quarantine(self, data: bytes, sha: str, name: str, reason: str, message: str) -> ImportResult:
        dest = self.root / "quarantine" / f"{sha}.bin"
        if not dest.exists():
            durable_write(dest, data)
        try:
            with Session(self.engine) as s, s.begin():
                if not s.scalar(sa.select(QuarantineRow.id).where(QuarantineRow.file_sha256 == sha)):
                    s.add(QuarantineRow(file_sha256=sha, original_name=name[:1024], reason=reason, message=message,
                                        path=str(dest), quarantined_at=_now()))
        except sa.exc.IntegrityError:
            pass  # another process quarantined the same file meanwhile: one row, as wanted
        return ImportResult(name, "quarantined", None, message)

    def _add_report(self, s: Session, r: DoseReport, sha: str, psd: float | None) -> ReportRow:
        row = ReportRow(
            sop_instance_uid=r.sop_instance_uid, study_instance_uid=r.study_instance_uid,
            device_uid=r.device_observer_uid or r.station_name, kind=r.kind, patient_id=r.patient_id,
            procedure=procedure_name(r), facility=r.institution, room=r.room, operator=r.operator,
            performed_at=r.content_datetime or r.study_datetime, n_events=r.number_of_events,
            kap_total_gy_cm2=r.kap_total_gy_cm2, dose_rp_total_gy=r.dose_rp_total_gy,
            fluoro_time_s=r.fluoro_time_s, dlp_total_mgy_cm=r.dlp_total_mgy_cm, peak_skin_dose_gy=psd,
            ctdivol_mgy=study_ctdivol(r), qa_reason=qa_reason(r, self.qa_rules),
            file_sha256=sha, imported_at=_now(), report_json=r.model_dump_json(),
        )
        s.add(row)
        s.flush()
        s.add_all(
            EventRow(report_id=row.id, event_uid=e.uid, event_type=e.event_type, started_at=e.datetime_started,
                     plane=e.plane, kap_gy_cm2=e.kap_gy_cm2, dose_rp_gy=e.dose_rp_gy)
            for e in r.events
        )
        s.add_all(
            EventRow(report_id=row.id, event_uid=a.uid, event_type=a.acquisition_type, plane="single",
                     ctdivol_mgy=a.ctdivol_mgy, dlp_mgy_cm=a.dlp_mgy_cm)
            for a in r.ct_acquisitions
        )
        return row

    def _supersede(self, s: Session, row: ReportRow, r: DoseReport) -> str:
        """Apply the cumulative-report rule within the same study and device; returns the status."""
        if not r.study_instance_uid:
            return "stored"
        others = s.scalars(sa.select(ReportRow).where(
            ReportRow.study_instance_uid == r.study_instance_uid, ReportRow.device_uid == row.device_uid,
            ReportRow.kind == row.kind, ReportRow.id != row.id, ReportRow.superseded_by.is_(None))).all()
        mine = r.event_uids
        status = "stored"
        for o in others:
            theirs = set(s.scalars(sa.select(EventRow.event_uid).where(
                EventRow.report_id == o.id, EventRow.event_uid.is_not(None))).all())
            if not mine or not theirs:
                continue
            if theirs <= mine and (len(mine) > len(theirs) or (row.performed_at or datetime.min) >= (o.performed_at or datetime.min)):
                o.superseded_by = row.id
            elif mine <= theirs:
                row.superseded_by = o.id
                status = "superseded"
        return status

    def _alerts(self, s: Session, row: ReportRow, r: DoseReport, psd: float | None) -> list[DoseAlert]:
        alerts = procedure_alerts(r, self.thresholds, psd)
        if r.patient_id and row.performed_at:
            rows = s.scalars(sa.select(ReportRow).where(ReportRow.patient_id == r.patient_id,
                                                        ReportRow.superseded_by.is_(None))).all()
            pairs = [(DoseReport.model_validate_json(x.report_json), x.peak_skin_dose_gy) for x in rows]
            new = patient_alerts(pairs, at=row.performed_at, thresholds=self.thresholds)
            # only patient alerts that this report newly causes
            old = {(a.metric) for a in patient_alerts([p for p in pairs if p[0].sop_instance_uid != r.sop_instance_uid],
                                                      at=row.performed_at, thresholds=self.thresholds)}
            alerts += [a for a in new if a.metric not in old]
        for a in alerts:
            s.add(AlertRow(report_id=row.id, patient_id=a.patient_id, scope=a.scope, metric=a.metric, value=a.value,
                           threshold=a.threshold, created_at=_now(), alert_json=a.model_dump_json()))
        return alerts

    # ---- queries ---------------------------------------------------------------------------
    def reports(self, include_superseded: bool = False) -> list[DoseReport]:
        with Session(self.engine) as s:
            q = sa.select(ReportRow.report_json).order_by(ReportRow.performed_at, ReportRow.id)
            if not include_superseded:
                q = q.where(ReportRow.superseded_by.is_(None))
            return [DoseReport.model_validate_json(j) for j in s.scalars(q).all()]

    def summary_frame(self, include_superseded: bool = False):
        """One row per current report (pandas DataFrame) for reference levels and charts."""
        import pandas as pd

        with Session(self.engine) as s:
            q = sa.select(ReportRow)
            if not include_superseded:
                q = q.where(ReportRow.superseded_by.is_(None))
            rows = s.scalars(q).all()
            cols = ["sop_instance_uid", "study_instance_uid", "patient_id", "kind", "procedure", "facility", "room",
                    "operator", "performed_at", "n_events", "kap_total_gy_cm2", "dose_rp_total_gy", "fluoro_time_s",
                    "dlp_total_mgy_cm", "ctdivol_mgy", "peak_skin_dose_gy", "qa_reason", "superseded_by"]
            return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in rows], columns=cols)

    def alerts(self, *, facilities: Collection[str] | None = None, since: datetime | None = None,
               room: str | None = None, scope: str | None = None, patient_id: str | None = None,
               exclude_ids: Collection[int] = (), newest_first: bool = False, limit: int | None = None) -> list[StoredAlert]:
        """Stored alerts, filtered in SQL so that a dashboard never loads another hospital's alerts.

        ``facilities``: institution names of the reports (None: all; an alert whose report names
        no facility matches only None). ``since``: raised at or after. ``scope``: procedure |
        patient. ``exclude_ids``: e.g. the alerts already acknowledged. Oldest first unless
        ``newest_first``.
        """
        q = sa.select(AlertRow, ReportRow.facility, ReportRow.room).join(
            ReportRow, ReportRow.id == AlertRow.report_id, isouter=True)
        if facilities is not None:
            q = q.where(ReportRow.facility.in_(list(facilities)))
        if since is not None:
            q = q.where(AlertRow.created_at >= since)
        if room is not None:
            q = q.where(ReportRow.room == room)
        if scope is not None:
            q = q.where(AlertRow.scope == scope)
        if patient_id is not None:
            q = q.where(AlertRow.patient_id == patient_id)
        if exclude_ids:
            q = q.where(AlertRow.id.not_in(list(exclude_ids)))
        q = q.order_by(AlertRow.created_at.desc(), AlertRow.id.desc()) if newest_first else q.order_by(AlertRow.id)
        if limit is not None:
            q = q.limit(limit)
        with Session(self.engine) as s:
            rows = s.execute(q).all()
        return [StoredAlert(**DoseAlert.model_validate_json(a.alert_json).model_dump(), id=a.id, created_at=a.created_at,
                            facility=facility, room=rm) for a, facility, rm in rows]

    def report_entries(self, *, patient_id: str | None = None, facilities: Collection[str] | None = None,
                       include_superseded: bool = False) -> list[ReportEntry]:
        """Totals of stored reports in time order (current ones unless ``include_superseded``), of
        one patient and/or some facilities: a patient's cumulative dose without double counting."""
        q = sa.select(*(getattr(ReportRow, f) for f in ReportEntry.model_fields))
        if not include_superseded:
            q = q.where(ReportRow.superseded_by.is_(None))
        if patient_id is not None:
            q = q.where(ReportRow.patient_id == patient_id)
        if facilities is not None:
            q = q.where(ReportRow.facility.in_(list(facilities)))
        with Session(self.engine) as s:
            rows = s.execute(q.order_by(ReportRow.performed_at, ReportRow.id)).mappings().all()
        return [ReportEntry.model_validate(dict(r)) for r in rows]

    def mark_qa(self, sop_instance_uid: str, qa: bool, reason: str = "set by hand") -> bool:
        """Override the QA/phantom rule for one report: ``qa=True`` keeps it out of reference levels,
        ``qa=False`` puts it back. Returns False when no such report is stored."""
        value = f"override: {reason}" if qa else None
        with Session(self.engine) as s, s.begin():
            n = s.execute(sa.update(ReportRow).where(ReportRow.sop_instance_uid == sop_instance_uid)
                          .values(qa_reason=value)).rowcount
        return bool(n)

    def quarantined(self) -> list[dict]:
        with Session(self.engine) as s:
            return [{"name": q.original_name, "reason": q.reason, "message": q.message, "path": q.path}
                    for q in s.scalars(sa.select(QuarantineRow).order_by(QuarantineRow.id))]

    def count_events(self) -> int:
        """Irradiation events of current (not superseded) reports: the no-double-counting total."""
        with Session(self.engine) as s:
            return int(s.scalar(sa.select(sa.func.count(EventRow.id)).join(ReportRow, EventRow.report_id == ReportRow.id)
                                .where(ReportRow.superseded_by.is_(None))) or 0)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()



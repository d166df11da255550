"""Multi-centre procedure registry and quality control.

Tables and Alembic migrations (SQLite embedded, PostgreSQL in production), an audit trail of
every change, the coded technique catalogue with tier rules, adverse-event grading (CIRSE 2017,
SIR 2003/2017) from raw facts, quality indicators with exact intervals, funnel plots with
over-dispersion and risk adjustment, operator CUSUM learning curves, hospital ratings, CSV/Excel
import, de-identified CSV/Parquet and FHIR R4 export, and the HTML QC report.
"""

from .bulk import insert_procedures, load_dataset
from .catalogue import Catalogue, load_catalogue
from .cusum import cusum_path, cusum_signal, cusum_threshold
from .db import init_db, make_engine, session_scope
from .export import export_fhir, export_research, fhir_bundle, research_table
from .funnel import binomial_limit, classify, exact_ci, funnel_limits, overdispersion
from .grading import AEFacts, cirse_grade, grade_all, sir_2003_grade, sir_2017_grade
from .importer import ImportReport, ImportValidationError, import_procedures
from .indicators import IndicatorDef, compute_indicators, load_indicators
from .ratings import HospitalRating, rate_hospitals
from .report import QCResult, build_qc, render_html, write_report
from .schemas import AdverseEventIn, HospitalIn, OperatorIn, OutcomeIn, ProcedureIn, RecordResult
from .store import add_hospital, add_operator, record_procedure

__all__ = [
    "AEFacts", "AdverseEventIn", "Catalogue", "HospitalIn", "HospitalRating", "ImportReport", "ImportValidationError",
    "IndicatorDef", "OperatorIn", "OutcomeIn", "ProcedureIn", "QCResult", "RecordResult", "add_hospital",
    "add_operator", "binomial_limit", "build_qc", "cirse_grade", "classify", "compute_indicators", "cusum_path",
    "cusum_signal", "cusum_threshold", "exact_ci", "export_fhir", "export_research", "fhir_bundle", "funnel_limits",
    "grade_all", "import_procedures", "init_db", "insert_procedures", "load_catalogue", "load_dataset",
    "load_indicators", "make_engine", "overdispersion", "rate_hospitals", "record_procedure", "render_html",
    "research_table", "session_scope", "sir_2003_grade", "sir_2017_grade", "write_report",
]

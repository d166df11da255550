"""Multi-centre procedure registry and quality control.

Tables and Alembic migrations (SQLite embedded, PostgreSQL in production), an audit trail of
every change, the coded technique catalogue with tier rules, adverse-event grading (CIRSE 2017,
SIR 2003/2017) from raw facts, quality indicators with exact intervals, funnel plots with
over-dispersion and risk adjustment, operator risk-adjusted (Steiner) CUSUM learning curves,
hospital ratings, CSV/Excel import as hospitals have it (GB18030, Chinese headers, slashed dates,
a template), ICD-10 diagnoses with Chinese and English names, de-identified CSV/Parquet and FHIR
R4 export, typed queries for applications (:mod:`.queries`), and DRG cost analysis per group and
hospital with a cost-outlier funnel (:mod:`.drg`, :mod:`.costs`). The HTML QC report and its
figures are drawn by :mod:`openir.report`.
"""

from .audit import audit_event
from .bulk import insert_procedures, load_dataset
from .catalogue import Catalogue, load_catalogue
from .codes import Resolved, resolve_diagnosis
from .columns import write_template
from .costs import import_costs, store_cost_dataset, store_costs, validate_costs, write_costs_csv
from .credentials import (
    OperatorCredentials,
    case_counts,
    credentials_report,
    import_training,
    read_training,
)
from .cusum import (
    cusum_path,
    cusum_signal,
    cusum_threshold,
    ra_learning_curve,
    ra_scores,
    ra_thresholds,
)
from .dates import parse_date
from .db import init_db, make_engine, session_scope, upgrade_component
from .drg import (
    DrgAnalysis,
    DrgConfig,
    analyse_drg,
    case_table,
    cost_funnel,
    drg_summary,
    load_drg_config,
    read_cases,
)
from .drilldown import CaseFilter, find_cases
from .edit import ProcedureEdit, edit_procedure, procedure_hospital
from .export import export_fhir, export_research, fhir_bundle, research_table
from .funnel import (
    Overdispersion,
    binomial_limit,
    classify,
    exact_ci,
    funnel_limits,
    overdispersion,
)
from .grading import AEFacts, cirse_grade, grade_all, sir_2003_grade, sir_2017_grade
from .importer import ImportReport, ImportValidationError, import_procedures
from .indicators import IndicatorDef, compute_indicators, load_indicators
from .qc import LearningCurve, QCResult, build_qc, learning_curves
from .queries import (
    CaseRecord,
    HospitalRef,
    OperatorRef,
    ProcedureSummary,
    count_procedures,
    find_case,
    find_procedure,
    get_hospital,
    get_operator,
    list_hospitals,
    list_operators,
    list_procedures,
    merge_procedure_links,
)
from .ratings import HospitalRating, rate_hospitals
from .schemas import (
    AdverseEventIn,
    HospitalIn,
    OperatorIn,
    OutcomeIn,
    ProcedureIn,
    RecordResult,
    SeedDosimetryIn,
)
from .store import add_hospital, add_operator, record_procedure

__all__ = [
    "OperatorCredentials", "case_counts", "credentials_report", "import_training", "read_training",
    "AEFacts", "AdverseEventIn", "CaseRecord", "Catalogue", "HospitalIn", "HospitalRating", "HospitalRef",
    "ImportReport", "ImportValidationError", "IndicatorDef", "LearningCurve", "OperatorIn", "OperatorRef",
    "CaseFilter", "OutcomeIn", "Overdispersion", "ProcedureEdit", "ProcedureIn", "ProcedureSummary",
    "QCResult", "RecordResult", "SeedDosimetryIn", "add_hospital", "add_operator", "audit_event",
    "binomial_limit", "build_qc", "cirse_grade", "classify", "compute_indicators", "count_procedures",
    "cusum_path", "cusum_signal", "cusum_threshold", "edit_procedure", "exact_ci", "export_fhir",
    "export_research", "fhir_bundle", "find_case", "find_cases", "find_procedure", "funnel_limits",
    "get_hospital",
    "get_operator", "grade_all", "import_procedures", "init_db", "insert_procedures", "learning_curves",
    "list_hospitals", "list_operators", "list_procedures", "load_catalogue", "load_dataset", "load_indicators",
    "Resolved", "make_engine", "merge_procedure_links", "overdispersion", "parse_date", "procedure_hospital",
    "ra_learning_curve", "ra_scores", "ra_thresholds", "rate_hospitals", "record_procedure", "research_table",
    "resolve_diagnosis", "session_scope", "sir_2003_grade", "sir_2017_grade", "upgrade_component",
    "write_template",
    # DRG and cost (issue 22): the cost generator is openir.phantom.registry_costs.generate_costs
    "DrgAnalysis", "DrgConfig", "analyse_drg", "case_table", "cost_funnel", "drg_summary", "import_costs",
    "load_drg_config", "read_cases", "store_cost_dataset", "store_costs", "validate_costs", "write_costs_csv",
]

"""Standard operating procedures as data: per catalogued technique, the indications,
contraindications, pre-procedure checks with thresholds, consent items, key steps, observation and
complications to watch, each item with its published source; and the check of one patient's values
against them (every deviation named with its source).

May import only ``openir.core`` (the registry records deviations through ``openir.sop.models``).

>>> from openir.sop import check_patient
>>> check_patient("tace", {"inr": 2.0, "platelets": 120}).blocked   # femoral access needs INR < 1.8
True
"""

from .check import check_patient
from .library import load_checks, load_sop, technique_ids
from .models import SOP, Antithrombotic, Deviation, PatientValues, SOPCheck
from .table import check_table, read_values

__all__ = [
    "SOP",
    "Antithrombotic",
    "Deviation",
    "PatientValues",
    "SOPCheck",
    "check_patient",
    "check_table",
    "load_checks",
    "load_sop",
    "read_values",
    "technique_ids",
]

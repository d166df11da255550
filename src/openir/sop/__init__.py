"""Standard operating procedures as data: per catalogued technique, the indications,
contraindications, pre-procedure checks with thresholds, consent items, key steps, observation and
complications to watch, each item with its published source; and the check of one patient's values
against them (every deviation named with its source).

May import only ``openir.core`` (the registry records deviations through ``openir.sop.models``).
"""

__all__: list[str] = []

"""Read a radiation dose structured report (RDSR), print its totals and the alerts it raises.

    python examples/dose_alerts.py [RDSR_FILE]

Without a file, a synthetic fluoroscopy RDSR (a long embolisation) is written and read.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from openir.dose import parse_rdsr, procedure_alerts
from openir.phantom.dose_reports import synthetic_xray_rdsr


def main(path: Path | None) -> None:
    if path is None:
        path = Path(tempfile.mkdtemp()) / "rdsr.dcm"
        synthetic_xray_rdsr(40, seed=1, dose_scale=6.0).save_as(path, enforce_file_format=True)
    report = parse_rdsr(path)
    print(f"{report.manufacturer or '?'} {report.model or ''}: {len(report.events)} irradiation events")
    print(f"KAP {report.kap_total_gy_cm2 or 0:.1f} Gy·cm², reference-point dose {report.dose_rp_total_gy or 0:.2f} Gy, "
          f"fluoroscopy {(report.fluoro_time_s or 0) / 60:.1f} min")
    alerts = procedure_alerts(report)
    for a in alerts:
        print(f"ALERT {a.message}.\n  follow-up: {a.follow_up}")
    if not alerts:
        print("no alert")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)

"""A planned cryoprobe carries the freeze-thaw-freeze schedule its array zone was computed with, in a
form `openir simulate PLAN.json` reads; IRE and heating probes carry none (their time is the row's)."""

from __future__ import annotations

import numpy as np

from openir.physics import load_array_data
from openir.physics.models import ProbeSource
from openir.plan import load_catalogue, load_configurations
from openir.plan.models import PlannedProbe
from openir.plan.placement import array_options
from openir.plan.planner import _schedule


def _probe(opt, schedule) -> PlannedProbe:
    return PlannedProbe(order=1, group=1, tumour="tumour_1", device=opt.device, modality=opt.modality,
                        setting=opt.setting, entry_lps=(0.0, -80.0, 0.0), tip_lps=(0.0, 0.0, 0.0),
                        direction_lps=(0.0, 1.0, 0.0), zone_centre_lps=(0.0, -15.0, 0.0), zone_index=0, track=1,
                        path_length_mm=80.0, tip_offset_mm=15.0, tip_offset_source="model", schedule=schedule)


def test_cryo_probe_schedule_is_the_models_and_simulate_reads_it():
    cfgs = load_configurations()
    opts, _ = array_options(load_catalogue(), "cryo", cfgs.modalities["cryo"])
    opt = next(o for o in opts if o.n_probes == 3)
    sched = _schedule(opt)
    minutes = [float(m) for m in load_array_data().cryo.default_schedule_min.value]
    assert sched is not None and [s.duration_s / 60 for s in sched] == minutes
    assert [s.power_w for s in sched] == [1.0 if k % 2 == 0 else 0.0 for k in range(len(minutes))]  # freeze, thaw, ...
    src = ProbeSource.model_validate(_probe(opt, sched).model_dump(mode="json"))
    assert src.schedule is not None and sum(s.duration_s for s in src.schedule) == 60 * sum(minutes)
    assert np.isclose(sum(s.duration_s for s in src.schedule if s.power_w > 0), 60 * sum(minutes[::2]))


def test_ire_and_heating_probes_have_no_schedule():
    cfgs = load_configurations()
    opts, _ = array_options(load_catalogue(), "ire", cfgs.modalities["ire"])
    assert opts and _schedule(opts[0]) is None

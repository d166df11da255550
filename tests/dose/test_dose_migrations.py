"""The dose store's tables have their own Alembic history; the migrated schema equals the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from openir.dose import DoseStore
from openir.dose.store import Base


def _diff(engine):
    with engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"include_name": lambda n, t, *_: t != "table" or n in Base.metadata.tables})
        return list(compare_metadata(mc, Base.metadata))


def test_a_new_store_is_at_the_head_and_equals_the_models(tmp_path):
    store = DoseStore(f"sqlite:///{tmp_path / 'd.db'}", tmp_path, skin_dose=False)
    assert _diff(store.engine) == []
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version_dose")).scalar() == "dose_0002"
    DoseStore(f"sqlite:///{tmp_path / 'd.db'}", tmp_path, skin_dose=False)  # reopening is a no-op


def test_a_store_made_by_create_all_is_stamped_and_upgraded_with_its_data(tmp_path):
    from openir.phantom import synthetic_xray_rdsr

    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = DoseStore(url, tmp_path, skin_dose=False)
    synthetic_xray_rdsr(4).save_as(tmp_path / "r.dcm", enforce_file_format=True)
    assert store.import_file(tmp_path / "r.dcm").status == "stored"
    with store.engine.begin() as conn:  # back to a pre-migration store: no version table, no new columns
        conn.execute(sa.text("drop table alembic_version_dose"))
        conn.execute(sa.text("alter table dose_reports drop column qa_reason"))
        conn.execute(sa.text("alter table dose_reports drop column ctdivol_mgy"))
    store.close()
    again = DoseStore(url, tmp_path, skin_dose=False)
    assert _diff(again.engine) == []
    with again.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from dose_reports")).scalar() == 1
        assert conn.execute(sa.text("select version_num from alembic_version_dose")).scalar() == "dose_0002"

"""The whole Dagster code location loads: broken imports or config fail here."""

import dagster as dg

from observatory_storage.definitions import defs


def test_definitions_load_and_validate():
    repo = defs.get_repository_def()
    assert isinstance(defs, dg.Definitions)
    dg.Definitions.validate_loadable(defs)
    assert repo.get_all_jobs() is not None

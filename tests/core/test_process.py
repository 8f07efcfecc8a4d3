import gc

from backend.core.process import freeze_startup_objects


def test_freezing_moves_live_objects_out_of_collection() -> None:
    gc.unfreeze()
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 10_000  # the modules a test process has loaded
        assert gc.get_count()[0] < 50  # nothing is left waiting in the youngest generation
    finally:
        gc.unfreeze()

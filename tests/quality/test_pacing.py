import pytest

from backend.quality.pacing import RunPacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_first_run_of_a_key_is_due_at_once() -> None:
    assert RunPacer(0.2, FakeClock()).due(1)


def test_next_run_waits_in_proportion_to_the_last_runs_cost() -> None:
    clock = FakeClock()
    pacer = RunPacer(0.2, clock)
    started = clock()
    clock.now += 0.5  # the run took 0.5 s; at a 20% share the next waits 4 × 0.5 = 2 s
    pacer.ran(7, started)
    clock.now += 1.99
    assert not pacer.due(7)
    assert pacer.due(8)  # other projects are paced on their own
    clock.now += 0.02
    assert pacer.due(7)


def test_share_of_one_never_waits() -> None:
    clock = FakeClock()
    pacer = RunPacer(1.0, clock)
    started = clock()
    clock.now += 3.0
    pacer.ran(1, started)
    assert pacer.due(1)


def test_busy_time_stays_under_the_share_however_long_runs_get() -> None:
    clock = FakeClock()
    pacer = RunPacer(0.25, clock)
    busy = 0.0
    took = 0.1
    end = clock.now + 600
    while clock.now < end:
        if pacer.due(1):
            started = clock()
            clock.now += took
            busy += took
            pacer.ran(1, started)
            took *= 1.05  # the project grows, and so does each run
        clock.now += 0.5  # the beat
    assert busy / 600 <= 0.25 + 0.01


@pytest.mark.parametrize("share", [0, -0.1, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="share must be in"):
        RunPacer(share)

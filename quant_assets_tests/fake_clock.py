"""A clock and sleep that only move when slept on: waits are measured, never spent."""


class FakeClock:
    """``clock()`` reads the time in seconds; ``clock.sleep(s)`` records ``s`` and moves it on."""

    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds

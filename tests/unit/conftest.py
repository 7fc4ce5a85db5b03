"""Every plan the unit tests build is checked against the step vocabulary
(ocirt/plan/steps.py): the runtime encodes plans without that check."""
import pytest

from ocirt.plan import build, steps


def _checked(builder):
    def checked(*args, **kwargs):
        plan = builder(*args, **kwargs)
        for step in plan:
            steps.check(step)
        return plan
    return checked


@pytest.fixture(autouse=True)
def _plans_are_checked(monkeypatch):
    monkeypatch.setattr(build, "create_plan", _checked(build.create_plan))
    monkeypatch.setattr(build, "exec_plan", _checked(build.exec_plan))

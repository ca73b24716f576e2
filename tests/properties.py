"""How hard the property tests search: many examples in a plain run, few under `make mutation`.

`make mutation` runs the core tests once per mutant under the `mutation` profile (tests/conftest.py)
so that its targeted unit tests, not thousands of random histories, decide what a mutant breaks.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def searching(examples: int, *, slow_data: bool = True) -> settings:
    """Settings of a property test: `examples` in a plain run, the active profile's count under
    any other profile; no deadline (a history runs `step` many times); with `slow_data`, slow
    generation of large histories is not an error."""
    plain = settings.get_current_profile_name() == "default"
    return settings(
        max_examples=examples if plain else settings().max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow] if slow_data else [],
    )

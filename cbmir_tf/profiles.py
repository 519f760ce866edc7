"""Parameter profiles of the notebooks: ``smoke``, ``cpu`` and ``paper``.

* ``smoke``: a few minutes on 2 CPU cores, for CI (small per-class subsets, short sweeps).
* ``cpu``: the default of ``make book``; the whole open benchmark, CPU-sized sweeps and epochs.
* ``paper``: the papers' own sizes and settings, meant for a GPU (e.g. Colab).

A notebook reads its settings with ``settings = get_profile(profile, "hog")``;
nothing further down in a notebook hard-codes a size or an epoch count.
"""

from __future__ import annotations

import copy

PROFILES: dict[str, dict[str, dict]] = {
    "smoke": {
        "data": {"max_per_class": 40, "examples_per_class": 4},
        "hog": {"max_per_class": 30, "sweep_bins": (9, 15), "grid": "paper", "val_fraction": 0.2,
                "n_example_queries": 4},
    },
    "cpu": {
        "data": {"max_per_class": None, "examples_per_class": 6},
        "hog": {"max_per_class": 150, "sweep_bins": (6, 9, 12, 15, 18), "grid": "paper",
                "val_fraction": 0.2, "n_example_queries": 6},
    },
    "paper": {
        "data": {"max_per_class": None, "examples_per_class": 8},
        "hog": {"max_per_class": None, "sweep_bins": (6, 9, 12, 15, 18), "grid": "paper",
                "val_fraction": 0.2, "n_example_queries": 8},
    },
}


def get_profile(profile: str, section: str, **overrides) -> dict:
    """Settings of one notebook ``section`` under ``profile``, with keyword ``overrides``.

    Raises:
        ValueError: unknown profile or section.
    """
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile. Use one of {sorted(PROFILES)}. Received: profile={profile!r}")
    sections = PROFILES[profile]
    if section not in sections:
        raise ValueError(f"Profile {profile!r} has no section {section!r}; it has {sorted(sections)}")
    settings = copy.deepcopy(sections[section])
    unknown = set(overrides) - set(settings)
    if unknown:
        raise ValueError(f"Unknown settings {sorted(unknown)} for section {section!r}")
    settings.update(overrides)
    return settings

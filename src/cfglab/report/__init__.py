"""``cfglab reproduce``: every claim of the paper as a report with figures (docs/sweeps.md).

Each section runs its experiments through the resumable sweep engine, then writes figures,
numbers and one sentence whose verdict is computed from the measured numbers.
"""

from cfglab.report.base import Figure, Section, SectionResult
from cfglab.report.profiles import PROFILES, Profile, get_profile
from cfglab.report.runner import reproduce

__all__ = ["Figure", "Section", "SectionResult", "PROFILES", "Profile", "get_profile", "reproduce"]

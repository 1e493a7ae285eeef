"""Hosted jurisdictions (issue 16 item 6): which profile a department's business is handled under.

Owns: the rule that a department of a jurisdiction hosted on this platform (Feicheng on Tai'an's platform,
001 Art.6) is handled under its own jurisdiction's profile, and every other department under the platform's
own; and which profiles a hosted jurisdiction may carry. The gateway registers jurisdictions and departments
and names the profile in `identity.department.changed`; the services that apply per-department rules
(request-svc first) resolve it here, so they agree on it.
"""

from __future__ import annotations

import re

from govshare_common.profiles import PROFILES, Profile

# GB/T 2260 administrative division code: six digits (370983 肥城市, 370900 泰安市).
DIVISION_CODE = re.compile(r"^[1-9][0-9]{5}$")


def hostable_profiles(platform: Profile) -> list[str]:
    """The built-in profiles a jurisdiction hosted on this platform may run under: any but the platform's own
    (the platform's own departments need no jurisdiction to be handled under it)."""
    return [name for name in PROFILES if name != platform.name]


def profile_named(name: str | None, platform: Profile) -> Profile:
    """The profile a department's business is handled under, from the name its jurisdiction carries: None (a
    department of the platform's own jurisdiction) or a name not known here is the platform's own profile."""
    if name is None or name == platform.name:
        return platform
    return PROFILES.get(name, platform)

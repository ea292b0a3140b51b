"""Pure statistical tests returning scipy-style StatResult objects, and Holm's correction."""

from relayaudit.stats.categorical import categorical_test
from relayaudit.stats.equality import equality_check
from relayaudit.stats.mmd import mmd_test
from relayaudit.stats.multiple import holm
from relayaudit.stats.numeric import kolmogorov_smirnov, mann_whitney
from relayaudit.stats.paired import mcnemar_exact
from relayaudit.stats.result import StatResult

__all__ = [
    "StatResult",
    "categorical_test",
    "equality_check",
    "holm",
    "kolmogorov_smirnov",
    "mann_whitney",
    "mcnemar_exact",
    "mmd_test",
]

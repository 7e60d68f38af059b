"""`gg.utils`: helpers around training; `gg.utils.data` loads data sets in batches."""

from . import data

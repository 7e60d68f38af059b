"""`gg.utils`: helpers around training; `gg.utils.data` shards data sets across ranks."""

from . import data

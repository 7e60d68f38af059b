"""Named result tuples, as `torch.return_types`: `values, indices = gg.sort(x)` unpacks and
`gg.sort(x).values` reads a field."""

from __future__ import annotations

from collections import namedtuple

_VI = ("values", "indices")

sort = namedtuple("sort", _VI)
topk = namedtuple("topk", _VI)
kthvalue = namedtuple("kthvalue", _VI)
median = namedtuple("median", _VI)
nanmedian = namedtuple("nanmedian", _VI)
mode = namedtuple("mode", _VI)
cummax = namedtuple("cummax", _VI)
cummin = namedtuple("cummin", _VI)
aminmax = namedtuple("aminmax", ("min", "max"))
slogdet = namedtuple("slogdet", ("sign", "logabsdet"))
qr = namedtuple("qr", ("Q", "R"))
svd = namedtuple("svd", ("U", "S", "Vh"))
eigh = namedtuple("eigh", ("eigenvalues", "eigenvectors"))

"""CompressAI, imported with its import-time ``torch.jit.script`` FutureWarning silenced.

CompressAI 1.2.8 (through torch_geometric) calls ``torch.jit.script`` while it is
imported, and torch deprecated that; the warning is about CompressAI's code, not
the user's, and nothing here can act on it. Every licodec module that uses
CompressAI imports this module first, so whichever of them loads CompressAI
does so inside this one targeted filter; other warnings are left alone.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
    import compressai  # noqa: F401

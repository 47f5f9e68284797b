"""How each provider speaks: paths, auth, ids, JSON spacing, key order, extras and errors.

The pipeline never asks "which dialect am I?"; it asks the dialect. Key orders and spacing
follow the live captures in fixtures/captures/.
"""

from __future__ import annotations

from collections.abc import Mapping

from mockserver.dialects.acedata import ACEDATA
from mockserver.dialects.aimlapi import AIMLAPI
from mockserver.dialects.base import Dialect, ErrorBody
from mockserver.dialects.deepseek import DEEPSEEK

DIALECTS: Mapping[str, Dialect] = {d.name: d for d in (DEEPSEEK, AIMLAPI, ACEDATA)}

__all__ = ["ACEDATA", "AIMLAPI", "DEEPSEEK", "DIALECTS", "Dialect", "ErrorBody"]

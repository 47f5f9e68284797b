"""deepseek-mock: a local mock of the DeepSeek Chat Completion API and its contract tests."""

import gc as _gc

# Importing the package allocates some 50,000 objects (modules, functions, tables, schemas)
# that live as long as the process: a collection in the middle of that walks them all for
# nothing, ~10 ms of a one-core start-up. Paused for the imports alone, and only if it was on.
_collecting = _gc.isenabled()
_gc.disable()
try:
    from mockserver.app import create_app
    from mockserver.delivery import Delivery
    from mockserver.dialects import DIALECTS, Dialect
    from mockserver.journal import Entry, Journal
    from mockserver.scenario import ErrorReply, Match, Reply, Rule, Scenario, ToolCall
    from mockserver.server import MockServer
    from mockserver.settings import Settings
finally:
    if _collecting:
        _gc.enable()

__all__ = [
    "DIALECTS",
    "Delivery",
    "Dialect",
    "Entry",
    "ErrorReply",
    "Journal",
    "Match",
    "MockServer",
    "Reply",
    "Rule",
    "Scenario",
    "Settings",
    "ToolCall",
    "create_app",
]

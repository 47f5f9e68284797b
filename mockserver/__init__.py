"""deepseek-mock: a local mock of the DeepSeek Chat Completion API and its contract tests."""

from mockserver.app import create_app
from mockserver.delivery import Delivery
from mockserver.dialects import DIALECTS, Dialect
from mockserver.journal import Entry, Journal
from mockserver.scenario import ErrorReply, Match, Reply, Rule, Scenario, ToolCall
from mockserver.server import MockServer
from mockserver.settings import Settings

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

"""DeepSeek's Anthropic-compatible surface: the Messages format at `/anthropic/v1/messages`.

Another wire format beside chat completions, with its own request parser (`request`), renderer
(`message`) and event encoder (`events`); the rule decision, the responder, delivery, faults
and the journal are the ones every dialect shares. `surface` reads what DeepSeek documents about
it per era (fixtures/anthropic/deepseek.json).
"""

from mockserver.anthropic.dialect import ANTHROPIC

__all__ = ["ANTHROPIC"]

"""relayaudit: audit LLM API relays against the official model they claim to serve."""

from relayaudit.errors import RelayAuditError
from relayaudit.types import ChatRequest, Completion, Endpoint, Message, Observation, Usage

__version__ = "0.1.0"

__all__ = [
    "ChatRequest",
    "Completion",
    "Endpoint",
    "Message",
    "Observation",
    "RelayAuditError",
    "Usage",
    "__version__",
]

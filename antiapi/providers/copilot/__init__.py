"""GitHub Copilot: sign in with GitHub's device flow (``antiapi login copilot``), then serve the
account's Copilot chat models. See docs/providers/copilot.md."""

from antiapi.providers.copilot.provider import CopilotProvider

__all__ = ["CopilotProvider"]

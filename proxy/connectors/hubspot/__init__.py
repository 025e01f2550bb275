"""The HubSpot CRM v3 connector."""

from .connector import HubSpotConnector
from .settings import HubSpotSettings

__all__ = ["HubSpotConnector", "HubSpotSettings"]

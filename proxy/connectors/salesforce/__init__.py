"""Salesforce REST (sObjects, sObject Collections, upsert by external id, OAuth refresh)."""

from .connector import SalesforceConnector
from .settings import SalesforceSettings

__all__ = ["SalesforceConnector", "SalesforceSettings"]

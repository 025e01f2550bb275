"""The standard objects the sandbox knows (a faithful subset of their fields, with the
real key prefixes, lengths, picklist values and flags)."""

from __future__ import annotations

from .schema import FieldDef, SObjectSchema, system_fields

INDUSTRIES = (
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Other",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
)
LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)
STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)


def _schema(name: str, plural: str, prefix: str, fields: list[FieldDef]) -> SObjectSchema:
    schema = SObjectSchema(name, name, plural, prefix, False)
    for item in system_fields() + fields:
        schema.add(item)
    return schema


def _full_name() -> FieldDef:
    """Contact/Lead Name: compound FirstName + LastName, read-only."""
    return FieldDef(
        "Name", "string", "Full Name", 121, createable=False, updateable=False, calculated=True
    )


def _account_id() -> FieldDef:
    return FieldDef("AccountId", "reference", "Account ID", 18, reference_to=("Account",))


def standard_objects() -> list[SObjectSchema]:
    """Fresh schemas (the catalog adds configured custom fields to them)."""
    return [
        _schema(
            "Account",
            "Accounts",
            "001",
            [
                FieldDef("Name", "string", "Account Name", 255, required=True, id_lookup=True),
                FieldDef("NumberOfEmployees", "int", "Employees", digits=8),
                FieldDef("AnnualRevenue", "currency", "Annual Revenue", precision=18, scale=0),
                FieldDef(
                    "Industry", "picklist", "Industry", 255, picklist=INDUSTRIES, restricted=True
                ),
                FieldDef("Website", "url", "Website", 255),
                FieldDef("Description", "textarea", "Account Description", 32000),
            ],
        ),
        _schema(
            "Contact",
            "Contacts",
            "003",
            [
                FieldDef("FirstName", "string", "First Name", 40),
                FieldDef("LastName", "string", "Last Name", 80, required=True),
                _full_name(),
                FieldDef("Email", "email", "Email", 80, id_lookup=True),
                FieldDef("Phone", "phone", "Business Phone", 40),
                FieldDef("Title", "string", "Title", 128),
                _account_id(),
                FieldDef("Birthdate", "date", "Birthdate"),
                FieldDef(
                    "DoNotCall", "boolean", "Do Not Call", default=False, defaulted_on_create=True
                ),
            ],
        ),
        _schema(
            "Lead",
            "Leads",
            "00Q",
            [
                FieldDef("FirstName", "string", "First Name", 40),
                FieldDef("LastName", "string", "Last Name", 80, required=True),
                _full_name(),
                FieldDef("Company", "string", "Company", 255, required=True),
                FieldDef("Email", "email", "Email", 80, id_lookup=True),
                FieldDef("Phone", "phone", "Phone", 40),
                FieldDef("Title", "string", "Title", 128),
                FieldDef(
                    "Status",
                    "picklist",
                    "Status",
                    255,
                    required=True,
                    picklist=LEAD_STATUSES,
                    default=LEAD_STATUSES[0],
                    defaulted_on_create=True,
                ),
            ],
        ),
        _schema(
            "Opportunity",
            "Opportunities",
            "006",
            [
                FieldDef("Name", "string", "Name", 120, required=True),
                FieldDef("StageName", "picklist", "Stage", 255, required=True, picklist=STAGES),
                FieldDef("CloseDate", "date", "Close Date", required=True),
                FieldDef("Amount", "currency", "Amount", precision=18, scale=2),
                _account_id(),
            ],
        ),
    ]

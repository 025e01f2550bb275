-- The schema of the "Integrate with HubSpot using Prisma" playbook: the app's own
-- tables in public, and Sequin-style synced HubSpot tables in the hubspot schema.
CREATE SCHEMA IF NOT EXISTS hubspot;

CREATE TABLE IF NOT EXISTS public.orgs (
    id          serial PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.users (
    id          serial PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    first_name  text,
    last_name   text,
    org_id      integer REFERENCES public.orgs (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS hubspot.contact (
    id                 text PRIMARY KEY,
    email              text UNIQUE,
    firstname          text,
    lastname           text,
    phone              text,
    company            text,
    lifecyclestage     text,
    user_id            integer,
    createdate         timestamptz,
    lastmodifieddate   timestamptz,
    _sync_inserted_at  timestamptz NOT NULL DEFAULT now(),
    _sync_updated_at   timestamptz NOT NULL DEFAULT now(),
    _updated_at        timestamptz
);

CREATE TABLE IF NOT EXISTS hubspot.deal (
    id                 text PRIMARY KEY,
    dealname           text,
    amount             numeric,
    dealstage          text,
    pipeline           text,
    closedate          timestamptz,
    createdate         timestamptz,
    hs_lastmodifieddate timestamptz,
    _sync_inserted_at  timestamptz NOT NULL DEFAULT now(),
    _sync_updated_at   timestamptz NOT NULL DEFAULT now(),
    _updated_at        timestamptz
);

CREATE TABLE IF NOT EXISTS hubspot.associations_contact_deal (
    contact_id         text NOT NULL,
    deal_id            text NOT NULL,
    labels             text[],
    _sync_inserted_at  timestamptz NOT NULL DEFAULT now(),
    _sync_updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contact_id, deal_id)
);

-- Sequin-style synced Salesforce tables: snake_case of the field API names.
CREATE SCHEMA IF NOT EXISTS salesforce;

CREATE TABLE IF NOT EXISTS salesforce.account (
    id                   text PRIMARY KEY,
    name                 text,
    number_of_employees  integer,
    annual_revenue       numeric,
    industry             text,
    website              text,
    external_key__c      text UNIQUE,
    created_date         timestamptz,
    last_modified_date   timestamptz,
    system_modstamp      timestamptz,
    is_deleted           boolean,
    _sync_inserted_at    timestamptz NOT NULL DEFAULT now(),
    _sync_updated_at     timestamptz NOT NULL DEFAULT now(),
    _updated_at          timestamptz
);

CREATE TABLE IF NOT EXISTS salesforce.contact (
    id                   text PRIMARY KEY,
    first_name           text,
    last_name            text,
    name                 text,
    email                text,
    phone                text,
    title                text,
    account_id           text,
    birthdate            date,
    do_not_call          boolean,
    user_id__c           text UNIQUE,
    created_date         timestamptz,
    last_modified_date   timestamptz,
    system_modstamp      timestamptz,
    is_deleted           boolean,
    _sync_inserted_at    timestamptz NOT NULL DEFAULT now(),
    _sync_updated_at     timestamptz NOT NULL DEFAULT now(),
    _updated_at          timestamptz
);

-- Sequin-style synced Stripe tables: top-level fields, nested objects as jsonb.
CREATE SCHEMA IF NOT EXISTS stripe;

CREATE TABLE IF NOT EXISTS stripe.customer (
    id                   text PRIMARY KEY,
    email                text,
    name                 text,
    phone                text,
    description          text,
    balance              bigint,
    tax_exempt           text,
    preferred_locales    text[],
    address              jsonb,
    metadata             jsonb,
    currency             text,
    delinquent           boolean,
    livemode             boolean,
    created              timestamptz,
    _sync_inserted_at    timestamptz NOT NULL DEFAULT now(),
    _sync_updated_at     timestamptz NOT NULL DEFAULT now(),
    _updated_at          timestamptz
);

CREATE TABLE IF NOT EXISTS stripe.product (
    id                   text PRIMARY KEY,
    name                 text,
    description          text,
    active               boolean,
    unit_label           text,
    url                  text,
    metadata             jsonb,
    livemode             boolean,
    created              timestamptz,
    updated              timestamptz,
    _sync_inserted_at    timestamptz NOT NULL DEFAULT now(),
    _sync_updated_at     timestamptz NOT NULL DEFAULT now(),
    _updated_at          timestamptz
);

CREATE TABLE IF NOT EXISTS stripe.price (
    id                   text PRIMARY KEY,
    product              text,
    currency             text,
    unit_amount          bigint,
    nickname             text,
    active               boolean,
    lookup_key           text,
    recurring            jsonb,
    tax_behavior         text,
    type                 text,
    metadata             jsonb,
    livemode             boolean,
    created              timestamptz,
    _sync_inserted_at    timestamptz NOT NULL DEFAULT now(),
    _sync_updated_at     timestamptz NOT NULL DEFAULT now(),
    _updated_at          timestamptz
);

CREATE TABLE IF NOT EXISTS stripe.coupon (
    id                   text PRIMARY KEY,
    name                 text,
    percent_off          numeric,
    amount_off           bigint,
    currency             text,
    duration             text,
    duration_in_months   integer,
    max_redemptions      integer,
    redeem_by            timestamptz,
    metadata             jsonb,
    times_redeemed       integer,
    valid                boolean,
    livemode             boolean,
    created              timestamptz,
    _sync_inserted_at    timestamptz NOT NULL DEFAULT now(),
    _sync_updated_at     timestamptz NOT NULL DEFAULT now(),
    _updated_at          timestamptz
);

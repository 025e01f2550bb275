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

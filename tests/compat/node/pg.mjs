// node-postgres (pg) scenarios. Usage: node pg.mjs SCENARIO [ARGS...]
// DATABASE_URL is the proxy (or, for the side-by-side comparisons, PostgreSQL itself);
// DIRECT_URL is always PostgreSQL itself.
import pg from 'pg'
import { env, main, pgError } from './lib.mjs'

const pool = (url = env('DATABASE_URL')) => new pg.Pool({ connectionString: url, max: 4 })

async function withPool(fn, url) {
  const p = pool(url)
  try {
    return await fn(p)
  } finally {
    await p.end()
  }
}

/** Run fn with one client of the pool, inside BEGIN ... COMMIT (ROLLBACK on error). */
async function inTransaction(p, fn) {
  const client = await p.connect()
  try {
    await client.query('BEGIN')
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK')
    throw err
  } finally {
    client.release()
  }
}

const caught = (promise) => promise.then(() => null, pgError)

/** The "create a CRM contact when a user signs up" guide, one transaction, one pool. */
const signUp = (p, email, firstName) => inTransaction(p, async (client) => {
  const { rows: [user] } = await client.query(
    'INSERT INTO public.users (email, first_name) VALUES ($1, $2) RETURNING id', [email, firstName])
  const { rows: [contact] } = await client.query(
    'INSERT INTO hubspot.contact (email, firstname, user_id) VALUES ($1, $2, $3) RETURNING id',
    [email, firstName, user.id])
  return { user, contact }
})

/** The same signup with a Salesforce contact (README: "Salesforce signup"). */
const signUpSalesforce = (p, email, firstName, lastName) => inTransaction(p, async (client) => {
  const { rows: [user] } = await client.query(
    'INSERT INTO public.users (email, first_name, last_name) VALUES ($1, $2, $3) RETURNING id',
    [email, firstName, lastName])
  const { rows: [contact] } = await client.query(
    `INSERT INTO salesforce.contact (first_name, last_name, email, user_id__c)
     VALUES ($1, $2, $3, $4) RETURNING id, name, created_date`,
    [firstName, lastName, email, String(user.id)])
  return { user, contact }
})

await main({
  // Pool, concurrent parameterized queries, a named prepared statement, rowMode array.
  async pool() {
    return withPool(async (p) => {
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        p.query('SELECT $1::int * 2 AS n, $2::text AS s', [i, `v${i}`])))
      const client = await p.connect()
      try {
        const prepared = []
        for (let i = 0; i < 5; i++) {
          const query = { name: 'double', text: 'SELECT $1::int8 * 2 AS n', values: [i] }
          const r = await client.query(query)
          prepared.push(r.rows[0].n)
        }
        const array = await client.query({
          text: 'SELECT 1 AS a, $1::text AS b', values: ['x'], rowMode: 'array',
        })
        const fields = array.fields.map((f) => [f.name, f.dataTypeID])
        return { many: many.map((r) => r.rows[0]), prepared, array: array.rows, fields, total: p.totalCount }
      } finally {
        client.release()
      }
    })
  },

  // BEGIN/COMMIT, BEGIN/ROLLBACK, savepoints, and a failed transaction.
  async transactions() {
    return withPool(async (p) => {
      const client = await p.connect()
      try {
        const q = (text, values) => client.query(text, values)
        await q('CREATE TEMP TABLE t (id int PRIMARY KEY, v text)')
        await q('BEGIN'); await q('INSERT INTO t VALUES ($1, $2)', [1, 'a']); await q('COMMIT')
        await q('BEGIN'); await q('INSERT INTO t VALUES ($1, $2)', [2, 'b']); await q('ROLLBACK')
        await q('BEGIN')
        await q('INSERT INTO t VALUES ($1, $2)', [3, 'c'])
        await q('SAVEPOINT s')
        await q('INSERT INTO t VALUES ($1, $2)', [4, 'd'])
        await q('ROLLBACK TO SAVEPOINT s')
        await q('COMMIT')
        await q('BEGIN')
        const failed = await caught(q('INSERT INTO t VALUES ($1, $2)', [1, 'dup']))
        const aborted = await caught(q('SELECT 1'))
        await q('ROLLBACK')
        const { rows } = await q('SELECT id, v FROM t ORDER BY id')
        return { rows, failed, aborted }
      } finally {
        client.release()
      }
    })
  },

  // Errors with every field PostgreSQL sends; notices; the session stays usable.
  async errors() {
    return withPool(async (p) => {
      const client = await p.connect()
      try {
        const notices = []
        client.on('notice', (n) => notices.push(pgError(n)))
        const errors = {
          division: await caught(client.query('SELECT 1/0')),
          syntax: await caught(client.query('SELEC 1')),
          badParam: await caught(client.query('SELECT $1::int', ['abc'])),
          raised: await caught(client.query(
            "DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = 'P0001', DETAIL = 'd', HINT = 'h'; END $$")),
          undefinedTable: await caught(client.query('SELECT * FROM no_such_table WHERE id = $1', [1])),
        }
        await client.query("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$")
        const after = (await client.query('SELECT 1 AS ok')).rows
        return { errors, notices, after }
      } finally {
        client.release()
      }
    })
  },

  // Values of many types as parameters and back, text and binary results.
  async types() {
    return withPool(async (p) => {
      const values = [7, -2147483648, '9007199254740993', '12345678901234567890.123456789', 1.5,
        true, 'héllo ☃ "q"', Buffer.from([0, 1, 2, 255]), { a: [1, 2], b: null }, { k: 'v' },
        new Date('2024-05-01T09:30:00.123Z'), '2024-05-01 09:30:00.123456', '2024-02-29',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', [1, 2, null], ['a', 'b,c', '"q"', null],
        '1 day 02:03:04', '10.0.0.1/8', null]
      const params = (await p.query(
        `SELECT $1::int2 AS int2, $2::int4 AS int4, $3::int8 AS int8, $4::numeric AS numeric,
                $5::float8 AS float8, $6::bool AS bool, $7::text AS text, $8::bytea AS bytea,
                $9::json AS json, $10::jsonb AS jsonb, $11::timestamptz AS timestamptz,
                $12::timestamp AS timestamp, $13::date::text AS date, $14::uuid AS uuid,
                $15::int4[] AS int4s, $16::text[] AS texts, $17::interval::text AS interval,
                $18::inet AS inet, $19::text AS nothing`, values)).rows[0]
      const literal = (await p.query(
        `SELECT 9223372036854775807::int8 AS big, '\\xdeadbeef'::bytea AS bytes,
                'NaN'::numeric AS nan, ARRAY[[1,2],[3,4]] AS matrix, '{"x": 1}'::jsonb AS doc,
                repeat('x', 100000) AS long, generate_series(1, 3) AS n`)).rows
      const binary = (await p.query({
        text: 'SELECT $1::int4 AS i, $2::text AS t, true AS b',
        values: [42, 'bin'], binary: true,
      })).rows.map((r) => ({ i: r.i, t: r.t, b: r.b }))
      literal.forEach((r) => { r.long = r.long.length })
      return { params, literal, binary }
    })
  },

  // LISTEN on one connection, NOTIFY from another.
  async notify() {
    return withPool(async (p) => {
      const listener = await p.connect()
      try {
        const received = new Promise((resolve) => listener.on('notification', resolve))
        await listener.query('LISTEN compat_node')
        await p.query("SELECT pg_notify('compat_node', $1)", ['payload ☃'])
        const { channel, payload } = await received
        return { channel, payload }
      } finally {
        listener.release()
      }
    })
  },

  // A synced write with RETURNING, an update and a delete, parameterized (extended protocol).
  async synced(email, firstName) {
    return withPool(async (p) => {
      const insert = await p.query(
        'INSERT INTO hubspot.contact (email, firstname) VALUES ($1, $2) RETURNING id, createdate',
        [email, firstName])
      const { id } = insert.rows[0]
      const prepared = []
      for (const n of [1, 2]) {
        const r = await p.query({
          name: 'add_contact',
          text: 'INSERT INTO hubspot.contact (email, firstname) VALUES ($1, $2) RETURNING id, email',
          values: [`prepared${n}@example.com`, `P${n}`],
        })
        prepared.push(r.rows[0])
      }
      const update = await p.query(
        'UPDATE hubspot.contact SET lastname = $1 WHERE id = $2 RETURNING lastname', ['Lovelace', id])
      const del = await p.query('DELETE FROM hubspot.contact WHERE email = $1', ['prepared2@example.com'])
      return {
        insert: { command: insert.command, rowCount: insert.rowCount, row: insert.rows[0] },
        prepared,
        update: { command: update.command, rowCount: update.rowCount, rows: update.rows },
        delete: { command: del.command, rowCount: del.rowCount },
      }
    })
  },

  // The guide's first pattern: app tables through a direct pool, the contact through the proxy.
  async signupTwoPools(email, firstName) {
    const direct = pool(env('DIRECT_URL'))
    const proxied = pool()
    try {
      const { rows: [user] } = await direct.query(
        'INSERT INTO public.users (email, first_name) VALUES ($1, $2) RETURNING id', [email, firstName])
      const { rows: [contact] } = await proxied.query(
        'INSERT INTO hubspot.contact (email, firstname, user_id) VALUES ($1, $2, $3) RETURNING id',
        [email, firstName, user.id])
      return { user, contact }
    } finally {
      await direct.end()
      await proxied.end()
    }
  },

  // The guide's better pattern: one pool (the proxy), one transaction per signup, one
  // signup after another on the same pool (a failed one must leave its connection usable).
  async salesforceSignups(...emails) {
    return withPool(async (p) => {
      const results = []
      for (const email of emails) {
        results.push(await signUpSalesforce(p, email, 'Ada', 'Lovelace')
          .catch((err) => ({ error: pgError(err) })))
      }
      return results
    })
  },

  async signups(...emails) {
    return withPool(async (p) => {
      const results = []
      for (const email of emails) {
        results.push(await signUp(p, email, 'Ada').catch((err) => ({ error: pgError(err) })))
      }
      return results
    })
  },
})

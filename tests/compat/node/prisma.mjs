// Prisma ORM scenarios (generator prisma-client-js, driver adapter @prisma/adapter-pg).
// Usage: node prisma.mjs SCENARIO [ARGS...]; DATABASE_URL is the proxy or PostgreSQL.
import { PrismaPg } from '@prisma/adapter-pg'
import prismaClient from '@prisma/client'
import { env, main } from './lib.mjs'

const { PrismaClient, Prisma } = prismaClient
const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: env('DATABASE_URL') }) })

/** What a Prisma error tells the application: its code and the database error under it. */
function prismaError(err) {
  const cause = err.meta?.driverAdapterError?.cause
  return { name: err.name, code: err.code, sqlstate: cause?.originalCode, kind: cause?.kind,
    target: err.meta?.target ?? cause?.constraint ?? null,
    message: cause?.originalMessage ?? err.message }
}

const attempt = (promise) => promise.then((value) => ({ value }), (err) => ({ error: prismaError(err) }))

/** The signup guide with Prisma: the user and its HubSpot contact in one transaction. */
const signUp = (email, firstname) => prisma.$transaction(async (tx) => {
  const user = await tx.users.create({ data: { email, first_name: firstname } })
  const contact = await tx.contact.create({ data: { email, firstname, user_id: user.id } })
  return { user, contact }
})

const deepInclude = { contacts: { include: { deals: { include: { deal: true } } } }, org: true }

const scenarios = {
  // Reads across both schemas (pass-through: the pytest side compares with PostgreSQL).
  async read(email) {
    return {
      users: await prisma.users.findMany({ include: deepInclude, orderBy: { id: 'asc' } }),
      contact: await prisma.contact.findUnique({
        where: { email }, include: { user: { include: { org: true } }, deals: { include: { deal: true } } },
      }),
      deals: await prisma.deal.findMany({
        where: { amount: { gte: new Prisma.Decimal('100') } },
        include: { contacts: { select: { contact: { select: { email: true } }, labels: true } } },
        orderBy: { dealname: 'asc' },
      }),
      orgs: await prisma.orgs.findMany({ select: { name: true, _count: { select: { users: true } } } }),
      associations: await prisma.associations_contact_deal.count(),
      raw: await prisma.$queryRaw`SELECT count(*)::int AS n FROM hubspot.contact WHERE email = ${email}`,
    }
  },

  // create / update / delete of synced rows, each reaching the vendor first.
  async crud(email, userId) {
    const created = await prisma.contact.create({
      data: { email, firstname: 'Ada', user: { connect: { id: Number(userId) } } },
    })
    const updated = await prisma.contact.update({
      where: { id: created.id }, data: { lastname: 'Lovelace', phone: '+44 20 7946 0000' },
    })
    const deal = await prisma.deal.create({
      data: {
        dealname: 'Analytical Engine', amount: new Prisma.Decimal('1843.50'),
        pipeline: 'default', dealstage: 'appointmentscheduled',
      },
    })
    const dealUpdated = await prisma.deal.update({
      where: { id: deal.id }, data: { dealstage: 'closedwon', amount: { increment: 100 } },
    })
    const nestedContact = { email: 'nested@example.com', firstname: 'Nes' }
    const nested = await prisma.users.create({
      data: { email: 'nested@example.com', contacts: { create: nestedContact } },
      include: { contacts: true },
    })
    const deleted = await prisma.contact.delete({ where: { email: 'nested@example.com' } })
    return { created, updated, deal, dealUpdated, nested, deleted }
  },

  // The bulk forms: createMany(AndReturn), updateMany(AndReturn), deleteMany, $executeRaw.
  async bulk() {
    const many = await prisma.contact.createMany({
      data: [{ email: 'b1@example.com' }, { email: 'b2@example.com' }],
    })
    const returned = await prisma.contact.createManyAndReturn({
      data: [{ email: 'b3@example.com', firstname: 'B3' }, { email: 'b4@example.com', firstname: 'B4' }],
      select: { id: true, email: true, firstname: true },
    })
    const updatedMany = await prisma.contact.updateMany({
      where: { email: { startsWith: 'b' } }, data: { company: 'Babbage & Co' },
    })
    const updatedReturned = await prisma.contact.updateManyAndReturn({
      where: { email: { in: ['b3@example.com', 'b4@example.com'] } }, data: { lifecyclestage: 'lead' },
      select: { email: true, lifecyclestage: true },
    })
    const deletedMany = await prisma.contact.deleteMany({
      where: { email: { in: ['b1@example.com', 'b2@example.com'] } },
    })
    const raw = await prisma.$executeRaw`INSERT INTO hubspot.contact (email) VALUES (${'raw@example.com'})`
    return { many, returned, updatedMany, updatedReturned, deletedMany, raw }
  },

  // A batch transaction: the operations commit together, or not at all.
  async batch(email) {
    return attempt(prisma.$transaction([
      prisma.users.create({ data: { email, first_name: 'Grace' } }),
      prisma.contact.create({ data: { email, firstname: 'Grace' } }),
      prisma.deal.create({ data: { dealname: 'COBOL', amount: 1959 } }),
      prisma.contact.count(),
    ]))
  },

  // Interactive transactions, one after another on the same client (and pool): a
  // rejected contact rolls back the user created before it, and the next signup works.
  async signups(...emails) {
    const results = []
    for (const email of emails) results.push(await attempt(signUp(email, 'Ada')))
    return results
  },

  // No matching row: Prisma's own "record not found" (P2025), and no API call.
  async missing() {
    const where = { email: 'nobody@example.com' }
    return {
      update: await attempt(prisma.contact.update({ where, data: { firstname: 'X' } })),
      delete: await attempt(prisma.contact.delete({ where })),
      updateMany: await prisma.contact.updateMany({ where, data: { firstname: 'X' } }),
    }
  },

  async upsert(email, firstname) {
    return attempt(prisma.contact.upsert({
      where: { email }, create: { email, firstname }, update: { firstname },
    }))
  },

  async skipDuplicates(...emails) {
    return attempt(prisma.contact.createMany({
      data: emails.map((email) => ({ email })), skipDuplicates: true,
    }))
  },

  async associate(contactId, dealId) {
    return attempt(prisma.associations_contact_deal.create({
      data: { contact_id: contactId, deal_id: dealId, labels: [] },
    }))
  },
}

try {
  await main(scenarios)
} finally {
  await prisma.$disconnect()
}

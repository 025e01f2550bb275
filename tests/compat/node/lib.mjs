// Shared by the scenario scripts: run the scenario named on the command line and print
// its result as one JSON document on stdout (the pytest side asserts on it).

/** The fields PostgreSQL sent with an error, as node-postgres exposes them. */
export function pgError(err) {
  const fields = ['code', 'severity', 'message', 'detail', 'hint', 'position', 'schema',
    'table', 'column', 'constraint', 'where', 'routine']
  return Object.fromEntries(fields.filter((f) => err[f] !== undefined).map((f) => [f, err[f]]))
}

function plain(_key, value) {
  if (typeof value === 'bigint') return `${value}n`
  if (value && value.type === 'Buffer' && Array.isArray(value.data)) {
    return `\\x${Buffer.from(value.data).toString('hex')}`
  }
  return value
}

export async function main(scenarios) {
  const [name, ...args] = process.argv.slice(2)
  const scenario = scenarios[name]
  if (!scenario) throw new Error(`unknown scenario ${name}; known: ${Object.keys(scenarios)}`)
  const result = await scenario(...args)
  process.stdout.write(`${JSON.stringify(result, plain)}\n`)
}

export const env = (name) => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}

// A bootstrap or fallback entry the client cannot hold is told to the app, never dropped in
// silence (CONTRACT §3: bootstrap problems are logged): an entry with no string key, and an entry
// whose value JSON cannot carry (NaN, a Date, a cycle), which the client reads as PARSE_ERROR and a
// snapshot does not hold. Before, the second kind was dropped with nothing logged and its flag
// said FLAG_NOT_FOUND; a fallback's unreadable entries of either kind were never logged.
import { expect, test } from 'vitest'
import { fetchBootstrap } from '@holdfast/core'
import { createFaultServer, flags } from '../support/faultServer'
import { useContractSuite } from '../support/contractClient'

const suite = useContractSuite()
const cycle: Record<string, unknown> = {}
cycle.self = cycle
const entries = [{ key: 'ok', value: 1 }, { key: 'nan', value: Number.NaN }, { key: 'date', value: { at: new Date(0) } }, { key: 'cycle', value: cycle }, { value: 'no key' }]

test('a bootstrap: the readable entries held, the four others counted in one warning', async () => {
  suite.server = await createFaultServer({ status: 503, raw: '' })
  const { client, logger } = suite.make({ bootstrap: { context: { targetingKey: 'alice' }, fetchedAt: 0, flags: entries as never } })
  expect(client.getValue('ok', 0)).toBe(1)
  expect(client.getValue('nan', 7)).toBe(7)
  expect(logger.warnings.filter((m) => m.includes('4 unreadable bootstrap entries were skipped'))).toHaveLength(1)
})

test('a fallback: the same, said of the fallback', async () => {
  suite.server = await createFaultServer({ status: 503, raw: '' })
  const { client, logger } = suite.make({ fallback: { context: { targetingKey: 'anyone' }, fetchedAt: 0, flags: entries as never } })
  expect(client.getValue('ok', 0)).toBe(1)
  expect(logger.warnings.filter((m) => m.includes('4 unreadable fallback entries were skipped'))).toHaveLength(1)
})

test('a clean snapshot: no warning', async () => {
  suite.server = await createFaultServer({ status: 503, raw: '' })
  const { logger } = suite.make({ bootstrap: { context: { targetingKey: 'alice' }, fetchedAt: 0, flags: [{ key: 'ok', value: { list: [1, 'a'] } }] }, fallback: { context: { targetingKey: 'anyone' }, fetchedAt: 0, flags: [{ key: 'ok', value: false }] } })
  expect(logger.warnings.filter((m) => m.includes('unreadable'))).toEqual([])
})

test('a bootstrap from a partial answer: the server\'s own PARSE_ERROR entry is not called unreadable', async () => {
  suite.server = await createFaultServer()
  suite.server.always(flags([{ key: 'ok', value: 1 }, { key: 'broken', errorCode: 'PARSE_ERROR', errorDetails: 'rule 3 does not parse' }], '"p1"'))
  const bootstrap = await fetchBootstrap({ url: suite.server.url, context: { targetingKey: 'alice' } })
  expect(bootstrap?.flags.map((f) => f.key)).toEqual(['ok', 'broken'])
  suite.server.always({ status: 503, raw: '' })
  const { client, logger } = suite.make({ bootstrap: bootstrap! })
  expect(client.getValue('ok', 0)).toBe(1)
  expect(client.getValue('broken', 7)).toBe(7)
  expect(logger.warnings.filter((m) => m.includes('unreadable'))).toEqual([])
})

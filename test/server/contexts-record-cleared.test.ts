// The data dir's proxy-mode record carries `cleared` (the contexts an upstream 401/403 dropped, and
// when) since 6ff4d53. Its worst values, as a disk, another version or a hand edit may leave them:
// whatever `cleared` holds, the generation's answers are still read (the relay's values are not lost
// over a list that only narrows what a snapshot may serve), and a list that cannot be trusted whole
// is not read at all; a valid one is read as written, and a record of an older server (none) too.
import { expect, it } from 'vitest'
import { contextsRecordSchema, readRecord } from '../../packages/server/src/flags/records'

const context = { key: 'k1', fetchedAt: 1_700_000_000_000, flags: [{ key: 'limit', value: 1, stale: false }] }
const record = (cleared: string | undefined) => `{"kind":"contexts","contexts":[${JSON.stringify(context)}]${cleared === undefined ? '' : `,"cleared":${cleared}`}}`

it('reads a valid cleared list as written, and none from an older server', () => {
  expect(readRecord(contextsRecordSchema, record('[{"key":"k1","at":1700000000001}]'))?.cleared).toEqual([{ key: 'k1', at: 1_700_000_000_001 }])
  const older = readRecord(contextsRecordSchema, record(undefined))
  expect(older?.contexts).toHaveLength(1)
  expect(older?.cleared).toBeUndefined()
})

it.each([
  ['not a list', '"x"'],
  ['null', 'null'],
  ['a time out of the double range (Infinity once parsed)', '[{"key":"k1","at":1e400}]'],
  ['a time as text', '[{"key":"k1","at":"NaN"}]'],
  ['a key that is no string', '[{"key":1,"at":1}]'],
  ['a key past 256 characters', `[{"key":"${'k'.repeat(257)}","at":1}]`],
  ['an entry nested deep', `[${'['.repeat(2000)}${']'.repeat(2000)}]`],
])('a cleared list that is %s: the answers are read, the list is not', (_, cleared) => {
  const read = readRecord(contextsRecordSchema, record(cleared))
  expect(read?.contexts.map((c) => [c.key, c.flags[0]?.value])).toEqual([['k1', 1]])
  expect(read?.cleared).toBeUndefined()
})

// The documents, leases and flags of one Redis store: each operation of SharedStore that reads or
// writes a key, as the Lua scripts (redisScripts.ts) or plain commands, under the namespace's
// prefix. createRedisStore wires them to its command connection (redisCommands.ts).
import type { ServerLogger } from '../logger'
import { ACQUIRE, PUT, READ, RELEASE, RENEW, TICKET } from './redisScripts'
import type { LeaseOutcome, PutOutcome, SharedStore, StoreResult } from './sharedStore'
import { serializeNotice } from './notice'
import type { CommandClient, RedisCommands } from './redisCommands'
import { escapeGlob, readDocument } from './redisReplies'
import type { RedisStatus } from './redisStatus'

/** The operations of a {@link SharedStore} on keys: what {@link createRedisDocuments} returns. */
export type RedisDocuments = Pick<SharedStore, 'ticket' | 'peek' | 'get' | 'put' | 'keys' | 'acquireLease' | 'renewLease' | 'releaseLease' | 'raise' | 'raised' | 'lower'>

/** Options of {@link createRedisDocuments}. */
export interface RedisDocumentsOptions {
  /** The store's commands. */
  commands: Pick<RedisCommands<CommandClient>, 'run' | 'evaluate'>
  /** Every key's prefix: `holdfast:<namespace>:`. */
  prefix: string
  /** The namespace's notice channel. */
  channel: string
  /** TTL of every stored document (ms). */
  ttl: number
  /** The store's status: told of a notice Redis refused or sent. */
  status: RedisStatus
  log?: ServerLogger
}

/** Creates the operations on keys of one Redis store; see the file comment. */
export function createRedisDocuments({ commands: { run, evaluate }, prefix, channel, ttl, status, log }: RedisDocumentsOptions): RedisDocuments {
  const leaseKey = `${prefix}lease`
  const clockKey = `${prefix}clock`
  const docKey = (key: string) => `${prefix}doc:${key}`
  const flagKey = (name: string) => `${prefix}flag:${name}`

  const map = <A, B>(result: StoreResult<A>, f: (value: A) => B): StoreResult<B> => (result.ok ? { ok: true, value: f(result.value) } : result)

  return {
    async ticket() {
      return map(await evaluate<string>(TICKET, [clockKey], [String(ttl)]), Number)
    },
    async peek(key) {
      const result = await evaluate<string[]>(READ, [docKey(key), clockKey], ['peek'])
      return map(result, (reply) => {
        const n = Number(reply[1])
        return reply.length < 2 || !Number.isFinite(n) ? undefined : n
      })
    },
    async get(key) {
      const result = await evaluate<string[] | Record<string, string>>(READ, [docKey(key), clockKey], ['get'])
      return map(result, (reply) => readDocument(reply))
    },
    async put(key, doc, lease) {
      const notice = serializeNotice({ type: 'changed', key, version: doc.version })
      const result = await evaluate<[string, string, string?, string?]>(PUT, [docKey(key), clockKey, leaseKey], [
        String(doc.version),
        String(doc.fetchedAt),
        doc.body,
        doc.etag ?? '',
        String(ttl),
        channel,
        notice,
        lease ?? '',
        doc.lineage ?? '',
      ])
      return map(result, ([outcome, current, replaced, unannounced]): PutOutcome => {
        if (replaced) log?.warn(`redis held something no relay wrote under ${docKey(key)} (another type, or a version no ticket gave); written over`)
        if (outcome === 'written') status.noticeRefused(unannounced || undefined)
        return outcome === 'older' ? { outcome: 'older', current: Number(current) } : { outcome: outcome as 'written' | 'refreshed' | 'fenced' }
      })
    },
    async keys(keyPrefix, limit) {
      const found: string[] = []
      let cursor = '0'
      const pattern = `${escapeGlob(docKey(keyPrefix))}*`
      do {
        const result = await run<[string, string[]]>(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '200'])
        if (!result.ok) return result
        cursor = String(result.value[0])
        for (const key of result.value[1]) if (found.length < limit) found.push(key.slice(docKey('').length))
      } while (cursor !== '0' && found.length < limit)
      return { ok: true, value: found }
    },
    async acquireLease(owner, ttlMs) {
      const result = await evaluate<[number, number]>(ACQUIRE, [leaseKey], [owner, String(ttlMs)])
      return map(result, ([held, pttl]): LeaseOutcome => (held === 1 ? { held: true } : { held: false, retryInMs: Math.max(0, Number(pttl)) }))
    },
    async renewLease(owner, ttlMs) {
      return map(await evaluate<number>(RENEW, [leaseKey], [owner, String(ttlMs)]), (renewed) => renewed === 1)
    },
    async releaseLease(owner) {
      return map(await evaluate<[number, string]>(RELEASE, [leaseKey], [owner, channel, serializeNotice({ type: 'released' })]), ([released, unannounced]) => {
        if (released === 1) status.noticeRefused(unannounced || undefined, 'released')
        return released === 1
      })
    },
    async raise(name, ttlMs) {
      return map(await run<string>(['SET', flagKey(name), '1', 'PX', String(Math.max(1, Math.round(ttlMs)))]), () => undefined)
    },
    async raised(name) {
      return map(await run<number>(['EXISTS', flagKey(name)]), (count) => Number(count) > 0)
    },
    async lower(name) {
      return map(await run<number>(['DEL', flagKey(name)]), (count) => Number(count) > 0)
    },
  }
}

// Shared set-up of the drop-marker tests (proxy mode, --on-upstream-unauthorized clear, --redis):
// the 'pro' answer, an upstream that can hold one user's request (a request sent before a 401 and
// answered after it), the proxy-mode relay options and source (createUpstreamSource sharing through
// a store), the drop markers read back from Redis, a burst of drops handed to createSharedContexts,
// and another tenant filling Redis past its maxmemory (every write refused, OOM).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createClient } from 'redis'
import { expect } from 'vitest'
import { createGenerationStore, createRedisStore, createSharedContexts, createUpstreamSource, type FlagServer, type RelaySource, type SharedStore } from '@holdfast/server'
import type { RedisServer } from '../support/redisServer'
import { status } from './redis-fleet'
import { evaluate, hostOnLoopback, recordingLogger, waitFor } from './helpers'
import type { FakeUpstream } from './relay-fakes'

type Cleanups = Array<() => Promise<void> | void>

/** The one flag every drop test serves: plan = 'pro'. */
export const PRO_FLAGS = [{ key: 'plan', value: 'pro', reason: 'STATIC' }]

/** PRO_FLAGS as startUpstream's behaviour. */
export const PRO = { ofrep: () => ({ flags: PRO_FLAGS }) }

/** PRO_FLAGS as an OFREP response body. */
export const PRO_BODY = JSON.stringify({ flags: PRO_FLAGS })

/** A relay in proxy mode on `upstream`, no poll, dropping a context's values at its first 401/403. */
export function proxyClear(upstream: Pick<FakeUpstream, 'url'>) {
  return { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined, onUpstreamUnauthorized: 'clear' } as const
}

/**
 * An OFREP upstream on 127.0.0.1 answering `mode`: 'ok' 200 PRO_BODY, 'revoked' 401, 'down' 500.
 * After `hold()`, the next request for `user` is kept unanswered (a request sent while the key was
 * accepted, answered only later): `held()` is its response once it has come, `release()` answers it
 * 200 PRO_BODY.
 */
export async function startHoldingUpstream(user: string) {
  let mode: 'ok' | 'revoked' | 'down' = 'ok'
  let holding = false
  let held: ServerResponse | undefined
  const url = await hostOnLoopback((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')))
    req.on('end', () => {
      const targetingKey = (JSON.parse(body) as { context: { targetingKey?: string } }).context.targetingKey
      if (targetingKey === user && holding) {
        holding = false
        held = res
        return
      }
      if (mode === 'down') return void res.writeHead(500).end('down')
      if (mode === 'revoked') return void res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"errorCode":"UNAUTHORIZED"}')
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(PRO_BODY)
    })
  })
  return {
    url,
    set: (next: 'ok' | 'revoked' | 'down') => void (mode = next),
    hold: () => void (holding = true),
    held: () => held,
    release: () => void held!.writeHead(200, { 'Content-Type': 'application/json' }).end(PRO_BODY),
  }
}

/**
 * Another tenant fills the Redis at `url` past a 1 MB maxmemory (noeviction): every write is refused
 * (OOM) until `free()`, which deletes its keys and sets maxmemory to 64 MB. Its client is closed by
 * `cleanups`.
 */
export async function fillRedis(url: string, cleanups: Cleanups) {
  const client = createClient({ url })
  await client.connect()
  cleanups.push(() => client.close())
  const filler = 'x'.repeat(4096)
  await Promise.all(Array.from({ length: 500 }, (_, i) => client.set(`other:${i}`, filler)))
  await client.configSet({ maxmemory: '1mb', 'maxmemory-policy': 'noeviction' })
  return {
    free: async () => {
      await client.del(Array.from({ length: 500 }, (_, i) => `other:${i}`))
      await client.configSet({ maxmemory: '64mb' })
    },
  }
}

/**
 * `server` (a relay of proxyClear on `upstream`, sharing through `redis`, logging to `log`) answers
 * user 'x' 200, the answer in the store; Redis is filled (fillRedis) and the upstream refuses the
 * user (401): the relay answers 503 and its drop is owed to the store (unshared 1, and the log says
 * Redis refused it) until memory frees and it is written (unshared 0; retried after 1 s, doubling).
 * `unshared` alone is 1 from the drop's first write going out: memory freed then, on a loaded
 * machine that write reached Redis after the free and was taken, never refused, never owed.
 */
export async function dropWhileRedisFull(redis: RedisServer, upstream: FakeUpstream, server: FlagServer, cleanups: Cleanups, log: { lines: string[] }) {
  const ask = async () => (await evaluate(server, { targetingKey: 'x' })).status
  await waitFor(async () => (await status(server)).redis?.state === 'up', 20_000)
  expect(await ask()).toBe(200)
  await waitFor(async () => (await redis.command('KEYS', '*context:*')).includes('context:'), 5000, 20)
  const tenant = await fillRedis(redis.url, cleanups)
  upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
  expect(await ask()).toBe(503)
  await waitFor(async () => log.lines.some((line) => /could not record a dropped context in the store/.test(line)) && (await status(server)).redis?.unshared === 1, 5000, 20)
  await tenant.free()
  await waitFor(async () => (await status(server)).redis?.unshared === 0, 10_000, 50)
}

/**
 * A proxy-mode source on `upstream` dropping a context's values at its first 401/403 (maxShrinkPercent
 * 50, upstream timeout and held-answer wait `timeoutMs`), sharing through the store `store()` makes;
 * closed by `cleanups`. Not opened.
 */
export function clearSource(upstream: Pick<FakeUpstream, 'url'>, timeoutMs: number, store: () => SharedStore, cleanups: Cleanups): RelaySource {
  const source = createUpstreamSource({
    url: upstream.url,
    maxShrinkPercent: 50,
    onUnauthorized: { mode: 'clear' },
    timeoutMs,
    heldAnswerAfterMs: timeoutMs,
    log: recordingLogger(),
    share: (take, held) => createSharedContexts({ store: store(), take, held }),
  })
  cleanups.push(() => source.close())
  return source
}

/** `source`'s answer for `targetingKey` with `headers`: its status and its first flag's value. */
export async function askSource(source: RelaySource, targetingKey: string, headers: Record<string, string> = {}) {
  const answer = await source.evaluate!({ context: { targetingKey }, headers } as never)
  return { status: answer.status, value: (answer.body as { flags?: Array<{ value: unknown }> }).flags?.[0]?.value }
}

/** The bodies of the context documents Redis holds under `pattern` (KEYS): answers and drop markers. */
export async function storedBodies(redis: RedisServer, pattern: string) {
  const keys = (await redis.command('KEYS', pattern)).split('\r\n').filter((line) => line.startsWith('holdfast:'))
  return Promise.all(keys.map(async (key) => (await redis.command('HGET', key, 'body')).split('\r\n')[1] ?? ''))
}

type SharedContexts = ReturnType<typeof createSharedContexts>

/** Starts `shared` and waits (10 s at most) until its store is up. */
export async function sharedUp(shared: SharedContexts) {
  await shared.start()
  await waitFor(() => shared.status().state === 'up', 10_000)
}

/** Hands `shared` `count` drops at once (context-0 …), on one ticket, as a re-ask round does. */
export function dropContexts(shared: SharedContexts, count: number) {
  const ticket = shared.ticket()
  const at = Date.now()
  for (let i = 0; i < count; i++) {
    const key = `context-${i}`
    shared.dropped!(key, { body: JSON.stringify({ kind: 'dropped', key, at }), fetchedAt: at }, ticket)
  }
}

/**
 * A proxy-mode relay with clear-after=1 sharing contexts through `redisUrl`'s `namespace` (the
 * clear-after --redis cases), with a data dir in `dir` and its own `fetch` when given; closed by
 * `cleanups`.
 */
export function clearAfterRelay(cleanups: Cleanups, redisUrl: string, upstreamUrl: string, namespace: string, options: { dir?: string; fetch?: typeof fetch } = {}): RelaySource {
  const source = createUpstreamSource({
    ...(options.dir ? { store: createGenerationStore({ dir: options.dir }) } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    url: upstreamUrl,
    maxShrinkPercent: 50,
    onUnauthorized: { mode: 'clear-after', seconds: 1 },
    timeoutMs: 1000,
    heldAnswerAfterMs: 1000,
    log: recordingLogger(),
    share: (take, held) => createSharedContexts({ store: createRedisStore({ url: redisUrl, namespace, commandTimeoutMs: 1000, reconnectMaxMs: 100 }), take, held }),
  })
  cleanups.push(() => source.close())
  return source
}

/**
 * Relays `a` and `b` opened on Redis; `a` answers 'victim' ('pro'), `b` takes it from the store; then
 * the key is revoked: `a`'s next request for 'victim' is refused upstream (its clear-after run begins)
 * and answered with the held values.
 */
export async function victimRefusedOnA(a: RelaySource, b: RelaySource, upstream: FakeUpstream): Promise<void> {
  for (const s of [a, b]) {
    await s.open()
    await waitFor(() => s.relayStatus().redis?.state === 'up', 10_000)
  }
  expect(await askSource(a, 'victim')).toEqual({ status: 200, value: 'pro' })
  await waitFor(() => b.relayStatus().contexts === 1, 10_000)
  upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
  expect((await askSource(a, 'victim')).status).toBe(200)
}

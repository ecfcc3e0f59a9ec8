// Option keys nothing reads (a slip of the hand, a spread config object): the options boundary is
// loose so `{ ...appConfig, flags }` starts, and so `redis: { url, namesapce: 'staging' }` joined
// production's fleet, `liveUpdate: false` left live updates on and `apiKEy` left the server open,
// without a word. Each unknown key path is now said once at start, with the known key it is
// closest to; a misspelt `apiKey` refuses to start. Real servers (and a real redis-server) on 127.0.0.1.
import { describe, expect, it, vi } from 'vitest'
import { createFlagHandler, createFlagServer, createStreamHub, type FlagServerOptions, type StreamHubOptions } from '@holdfast/server'
import { parseCliArgs } from '../../packages/server/src/cliOptions'
import { buildServerOptions } from '../../packages/server/src/serverOptions'
import { SERVER_OPTION_KEYS, unknownOptions, type KeysOf } from '../../packages/server/src/unknownOptions'
import { DEMO_FLAGS, evaluate, recordingLogger, startServer, tempDir } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'
import { useRedisFleet } from './redis-fleet'

vi.setConfig({ testTimeout: 60_000 })

const { redisServer } = useRedisFleet()

/** The lines of `logger` that speak of unknown options. */
const unknownLines = (logger: { lines: string[] }) => logger.lines.filter((line) => /unknown option/.test(line))

/** Starts a server with `options` (as an operator's untyped config object) and a recording logger; the lines about unknown options. */
async function startedWith(options: Record<string, unknown>): Promise<string[]> {
  const logger = recordingLogger()
  await startServer({ ...options, logger } as Partial<FlagServerOptions>)
  return unknownLines(logger)
}

/** Starts a server with `options`: the lines about unknown options, and the status of a bulk evaluation it then answers. */
async function servedWith(options: Record<string, unknown>): Promise<{ lines: string[]; status: number }> {
  const logger = recordingLogger()
  const server = await startServer({ ...options, logger } as Partial<FlagServerOptions>)
  return { lines: unknownLines(logger), status: (await evaluate(server, { targetingKey: 'u1' })).status }
}

describe('unknown option keys of createFlagServer / createFlagHandler', () => {
  it('a misspelt top-level key is said once, naming the option it is closest to; the server starts', async () => {
    const dir = await tempDir()
    expect(await startedWith({ liveUpdate: false })).toEqual(['[holdfast-server] unknown option liveUpdate (did you mean liveUpdates?)'])
    expect(await startedWith({ dataDIr: dir })).toEqual(['[holdfast-server] unknown option dataDIr (did you mean dataDir?)'])
    expect(await startedWith({ eventsDedup: { maxIds: 10 } })).toEqual(['[holdfast-server] unknown option eventsDedup (did you mean eventsDedupe?)'])
    expect(await startedWith({ keepAliveTimeout: 1000 })).toEqual(['[holdfast-server] unknown option keepAliveTimeout (did you mean keepAliveTimeoutMs?)'])
  })

  it('a misspelt key in a nested options object is said with its path: liveUpdates, eventsDedupe, limits', async () => {
    expect(await startedWith({ liveUpdates: { heartbeatMS: 20_000, maxConection: 10 } })).toEqual([
      '[holdfast-server] unknown option liveUpdates.heartbeatMS (did you mean liveUpdates.heartbeatMs?)',
      '[holdfast-server] unknown option liveUpdates.maxConection (did you mean liveUpdates.maxConnections?)',
    ])
    expect(await startedWith({ eventsDedupe: { windowMS: 60_000, max_ids: 5 } })).toEqual([
      '[holdfast-server] unknown option eventsDedupe.windowMS (did you mean eventsDedupe.windowMs?)',
      '[holdfast-server] unknown option eventsDedupe.max_ids (did you mean eventsDedupe.maxIds?)',
    ])
    expect(await startedWith({ limits: { maxBodyByte: 10_000 } })).toEqual(['[holdfast-server] unknown option limits.maxBodyByte (did you mean limits.maxBodyBytes?)'])
  })

  it('a key given beside the object it belongs in is said with where it goes', async () => {
    expect(await startedWith({ namespace: 'staging' })).toEqual(['[holdfast-server] unknown option namespace (did you mean redis.namespace?)'])
  })

  it('the relay: misspelt upstream options are said; a misspelt source is said before the start is refused', async () => {
    const upstream = await startServer()
    const logger = recordingLogger()
    const relay = await createFlagServer({ upstream: upstream.url, port: 0, logger, forwardHeader: ['X-Tenant'], upstreamTimeoutMS: 2000 } as FlagServerOptions)
    await relay.close()
    expect(unknownLines(logger)).toEqual([
      '[holdfast-server] unknown option forwardHeader (did you mean forwardHeaders?)',
      '[holdfast-server] unknown option upstreamTimeoutMS (did you mean upstreamTimeoutMs?)',
    ])
    const refused = recordingLogger()
    await expect(createFlagServer({ upStream: upstream.url, port: 0, logger: refused } as FlagServerOptions)).rejects.toThrow(/flags is required/)
    expect(unknownLines(refused)).toEqual(['[holdfast-server] unknown option upStream (did you mean upstream?)'])
  })

  it('events forwarding: a misspelt eventsForwarding key is said', async () => {
    const logger = recordingLogger()
    const spool = await tempDir()
    const handler = await createFlagHandler({ flags: DEMO_FLAGS, logger, eventsUpstream: 'http://127.0.0.1:1/holdfast/v1/events', eventsSpoolDir: spool, eventsForwarding: { batchSise: 10 } } as never)
    await handler.close()
    expect(unknownLines(logger)).toEqual(['[holdfast-server] unknown option eventsForwarding.batchSise (did you mean eventsForwarding.batchSize?)'])
  })

  // eventsForwarding was typed as the forwarder's options less url, spool, log and headers, so
  // `deadLetter` (a DeadLetter to keep refused events in) was a typed, known key: taken without a
  // word, then replaced by the spool's own dead-letter file (the one `events replay-dead-letters`
  // reads), so a host's DeadLetter was never told of a refused event. It is no option of the
  // server: said as an unknown key, and no longer in the type.
  it('events forwarding: a deadLetter given in eventsForwarding is said (the spool\'s own file is the dead letter)', async () => {
    const logger = recordingLogger()
    const spool = await tempDir()
    const handler = await createFlagHandler({ flags: DEMO_FLAGS, logger, eventsUpstream: 'http://127.0.0.1:1/holdfast/v1/events', eventsSpoolDir: spool, eventsForwarding: { deadLetter: { add: async () => 'kept' } } } as never)
    await handler.close()
    expect(unknownLines(logger)).toEqual([expect.stringMatching(/^\[holdfast-server\] unknown option eventsForwarding\.deadLetter\b/)])
  })

  it('redis: a misspelt namespace is said (the relay joins the unnamed fleet of its source); a correct one says nothing', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(2) })
    const start = async (options: Record<string, unknown>) => {
      const logger = recordingLogger()
      const relay = await createFlagServer({ flagsUrl: `${upstream.url}/flags.json`, port: 0, logger, maxEventLoopDelayMs: 0, redis: { url: redis.url, ...options } } as FlagServerOptions)
      await relay.close()
      return unknownLines(logger)
    }
    expect(await start({ namesapce: 'staging' })).toEqual(['[holdfast-server] unknown option redis.namesapce (did you mean redis.namespace?)'])
    expect(await start({ namespace: 'production', leaseTtlMs: 1500, commandTimeoutMs: 300, backupTtlMs: 60_000 })).toEqual([])
  })

  it('createFlagHandler says each unknown key once, and the listening options of createFlagServer are not its own', async () => {
    const logger = recordingLogger()
    const handler = await createFlagHandler({ flags: DEMO_FLAGS, logger, eventsKep: 3, port: 0 } as never)
    await handler.close()
    expect(unknownLines(logger)).toEqual(['[holdfast-server] unknown option eventsKep (did you mean eventsKeep?)', '[holdfast-server] unknown option port (ignored)'])
  })

  it('a correct config, every nested object filled in, says nothing; the same with one key misspelt says that one', async () => {
    const dir = await tempDir()
    const correct: Record<string, unknown> = {
      flags: DEMO_FLAGS,
      host: '127.0.0.1',
      maxConnections: 100,
      headersTimeoutMs: 5000,
      requestTimeoutMs: 10_000,
      keepAliveTimeoutMs: 1000,
      drainTimeoutMs: 1000,
      apiKey: 'k',
      corsOrigin: 'https://app.example',
      demoControls: false,
      strictValidation: true,
      maxShrinkPercent: 50,
      limits: { maxBodyBytes: 10_000, maxAttributes: 10, maxDepth: 3, maxStringLength: 100, maxTargetingKeyLength: 100 },
      answerCacheBytes: 1000,
      liveUpdates: { maxConnections: 10, maxConnectionsPerClient: 2, heartbeatMs: 20_000, retryMs: 3000, recoveryWindowMs: 1000, inactivityDelaySec: 60, requestUri: '/holdfast/v1/stream' },
      dataDir: dir,
      keepGenerations: 2,
      eventsFile: `${dir}/events.jsonl`,
      eventsMaxBytes: 100_000,
      eventsKeep: 2,
      eventsDedupe: { maxIds: 100, windowMs: 60_000 },
      eventsWriteTimeoutMs: 2000,
      routes: {},
      middleware: [],
    }
    expect(await startedWith(correct)).toEqual([])
    const { eventsKeep, ...rest } = correct
    expect(await startedWith({ ...rest, eventsKeeep: eventsKeep, dataDir: await tempDir(), eventsFile: `${await tempDir()}/events.jsonl` })).toEqual([
      '[holdfast-server] unknown option eventsKeeep (did you mean eventsKeep?)',
    ])
  })

  it('a spread config object with unrelated keys is said, and the server starts and serves', async () => {
    const appConfig = { appName: 'shop', databaseUrl: 'postgres://db/shop', session: { secret: 's' } }
    expect(await servedWith({ ...appConfig, flags: DEMO_FLAGS })).toEqual({
      lines: ['[holdfast-server] unknown option appName (ignored)', '[holdfast-server] unknown option databaseUrl (ignored)', '[holdfast-server] unknown option session (ignored)'],
      status: 200,
    })
  })

  it('a spread of a large config object is said in 20 lines and one counting the rest, not a line per key', async () => {
    const settings = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`setting${i}`, i]))
    const { lines, status } = await servedWith({ ...settings, flags: DEMO_FLAGS })
    expect(status).toBe(200)
    // Before: 500 lines at start.
    expect(lines).toHaveLength(21)
    expect(lines[0]).toBe('[holdfast-server] unknown option setting0 (ignored)')
    expect(lines[20]).toBe('[holdfast-server] 480 more unknown option keys (ignored)')
  })

  it('a misspelt apiKey with no apiKey refuses to start (fail closed), naming it; beside a real apiKey it is only said', async () => {
    for (const slip of ['apiKEy', 'api_key', 'apiKeys', 'apikey']) {
      const logger = recordingLogger()
      await expect(createFlagServer({ flags: DEMO_FLAGS, port: 0, logger, [slip]: 'secret' } as FlagServerOptions), slip).rejects.toThrow(
        new RegExp(`invalid options: ${slip} is not an option \\(did you mean apiKey\\?\\); without apiKey every route is open to anyone`),
      )
      await expect(createFlagHandler({ flags: DEMO_FLAGS, logger, [slip]: 'secret' } as never), slip).rejects.toThrow(/did you mean apiKey/)
    }
    const logger = recordingLogger()
    const server = await startServer({ apiKey: 'secret', apikey: 'secret', logger } as Partial<FlagServerOptions>)
    expect(unknownLines(logger)).toEqual(['[holdfast-server] unknown option apikey (did you mean apiKey?)'])
    expect((await evaluate(server, { targetingKey: 'u1' })).status).toBe(401)
  })

  it('the options the CLI builds are all known (the CLI refuses unknown flags itself)', () => {
    const modes = [
      { flags: 'flags.json', port: '0', host: '127.0.0.1', 'events-file': 'e.jsonl', 'events-max-bytes': '1000', 'events-keep': '2', 'api-key': 'k', 'cors-origin': 'https://a.example', 'demo-controls': true, lenient: true, 'max-event-loop-delay': '100', 'max-connections': '10', 'max-streams': '4', 'max-streams-per-client': '2', 'data-dir': 'd', snapshot: 's.json', 'max-shrink': '20' },
      { upstream: 'http://127.0.0.1:1', 'poll-interval': '5', 'admin-key': 'a', 'on-upstream-unauthorized': 'clear', 'forward-header': ['X-Tenant'], 'upstream-timeout': '2', redis: 'redis://127.0.0.1:1', 'redis-namespace': 'staging', 'events-upstream': 'http://127.0.0.1:1/e', 'events-spool': 'sp', 'events-dead-letter-max-bytes': '100000', 'events-write-timeout': '1000', 'no-live-updates': true },
      { 'flags-url': 'http://127.0.0.1:1/f.json', redis: 'redis://127.0.0.1:1', 'redis-lease-ttl': '10' },
    ]
    expect(parseCliArgs(['--flags', 'flags.json', '--redis-namesapce', 'staging'])).toMatchObject({ ok: false, error: expect.stringMatching(/Unknown option '--redis-namesapce'/) })
    for (const values of modes) {
      const built = buildServerOptions(values as never, {})
      expect(built, JSON.stringify(values)).toMatchObject({ ok: true })
      expect(unknownOptions((built as { options: object }).options, SERVER_OPTION_KEYS), JSON.stringify(values)).toEqual([])
    }
  })

  it('a 1 MB unknown key (a spread object from anywhere) is said in a bounded line, and the start is not held by comparing it', async () => {
    const logger = recordingLogger()
    const started = performance.now()
    const server = await startServer({ ['k'.repeat(1_000_000)]: 1, logger } as Partial<FlagServerOptions>)
    const tookMs = performance.now() - started
    expect((await evaluate(server, { targetingKey: 'u1' })).status).toBe(200)
    const [line, ...more] = unknownLines(logger)
    expect(more).toEqual([])
    expect(line).toMatch(/^\[holdfast-server\] unknown option k{40,}… \(1000000 characters\) \(ignored\)$/)
    expect(line!.length).toBeLessThan(300)
    // Before: an edit distance of the whole key against every known one, 25 s and 1.5 GB on a 2-core box.
    expect(tookMs).toBeLessThan(2000)
  })

  it('apiKey: false runs open on purpose: a spread config with appKey / apiKeyId / apiKeys starts, says those keys, and answers without a key', async () => {
    const appConfig = { appKey: 'algolia-app', apiKeyId: 'kid-1', apiKeys: ['a'] }
    const refused = recordingLogger()
    await expect(createFlagServer({ ...appConfig, flags: DEMO_FLAGS, port: 0, logger: refused } as FlagServerOptions)).rejects.toThrow(
      /Give apiKey, or apiKey: false to run without a key on purpose/,
    )
    expect(await servedWith({ ...appConfig, apiKey: false })).toEqual({
      lines: ['[holdfast-server] unknown option appKey (did you mean apiKey?)', '[holdfast-server] unknown option apiKeyId (did you mean apiKey?)', '[holdfast-server] unknown option apiKeys (did you mean apiKey?)'],
      status: 200,
    })
    const handler = await createFlagHandler({ ...appConfig, apiKey: false, flags: DEMO_FLAGS, logger: recordingLogger() } as never)
    await handler.close()
  })

  // createStreamHub is exported for hosts that wire the stream themselves; its options are those of
  // `liveUpdates`, and a misspelt one (`heartbeatMS: 5000`) left the 20 s heartbeat without a word,
  // where the same key under createFlagServer's liveUpdates is said.
  it('createStreamHub called directly says its unknown keys, on its log (or the console); through createFlagServer they are said once, as liveUpdates.…', async () => {
    const logger = recordingLogger()
    createStreamHub({ heartbeatMS: 5000, retryMs: 500, colour: 'red' } as StreamHubOptions, logger).close()
    expect(unknownLines(logger)).toEqual(['unknown option heartbeatMS (did you mean heartbeatMs?)', 'unknown option colour (ignored)'])
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      createStreamHub({ heartbeatMS: 5000 } as StreamHubOptions).close()
      expect(warn.mock.calls.map(([line]) => line)).toEqual(['[holdfast-server] unknown option heartbeatMS (did you mean heartbeatMs?)'])
    } finally {
      warn.mockRestore()
    }
    createStreamHub({ heartbeatMs: 5000, retryMs: 500 }, logger).close()
    expect(unknownLines(logger)).toHaveLength(2)
    expect(await startedWith({ liveUpdates: { heartbeatMS: 5000 } })).toEqual(['[holdfast-server] unknown option liveUpdates.heartbeatMS (did you mean liveUpdates.heartbeatMs?)'])
  })
})

describe('fetch: the relay\'s own requests (flagsUrl, upstream)', () => {
  // Read by every request the relay makes upstream (createRelaySource), taken and not said as
  // unknown, but missing from FlagServerOptions: a TypeScript host (a proxy agent, mTLS, a test's
  // fake) had to cast its options to pass it. The typecheck fails on the call below without it.
  it('is a typed option: the relay asks its flagsUrl through it, and nothing is said of it', async () => {
    const upstream = await startUpstream({ document: booleanFlags(2) })
    const asked: string[] = []
    const through: typeof fetch = (input, init) => (asked.push(String(input)), fetch(input, init))
    const logger = recordingLogger()
    const options: Partial<FlagServerOptions> = { flags: undefined, flagsUrl: `${upstream.url}/flags.json`, fetch: through, logger }
    await startServer(options)
    expect(asked).toContain(`${upstream.url}/flags.json`)
    expect(unknownLines(logger)).toEqual([])
    // A value that is not a function is refused at start, as other options are, not at the first poll.
    await expect(createFlagServer({ flagsUrl: `${upstream.url}/flags.json`, fetch: 'undici' as never, port: 0, logger })).rejects.toThrow(/invalid options: fetch: /)
  })
})

// The lists of known keys are checked by the typecheck (`satisfies KeysOf<Options>`): an option
// missing from them fails it. A nested options object listed as `true` was let through (`true |
// keys` for every entry), and `true` is never looked into: `redis: true` would have left
// `redis.namesapce` unsaid again. The typecheck is the test: each line below must not compile.
interface Nested {
  url: string
  redis?: string | { url: string; namespace?: string }
  liveUpdates?: false | { heartbeatMs?: number; now?: () => number }
  headers?: Record<string, string>
  logger?: { warn(message: string): void }
  names?: string[]
  onChange?: () => void
}
const nestedKeys = { url: true, redis: { url: true, namespace: true }, liveUpdates: { heartbeatMs: true, now: true }, headers: true, logger: true, names: true, onChange: true } as const
nestedKeys satisfies KeysOf<Nested, 'headers' | 'logger'>
// @ts-expect-error a nested options object listed as `true`
;({ ...nestedKeys, redis: true }) satisfies KeysOf<Nested, 'headers' | 'logger'>
// @ts-expect-error another
;({ ...nestedKeys, liveUpdates: true }) satisfies KeysOf<Nested, 'headers' | 'logger'>
// @ts-expect-error an injected object not named as one not looked into
;({ ...nestedKeys }) satisfies KeysOf<Nested, 'headers'>
// @ts-expect-error a key of a nested options object left out
;({ ...nestedKeys, redis: { url: true } }) satisfies KeysOf<Nested, 'headers' | 'logger'>

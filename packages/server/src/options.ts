import { z } from 'zod'
import { DEFAULT_MAX_SHRINK_PERCENT } from './flags/guard'
import { httpUrlProblem } from './flags/upstreamFetch'
import { corsOriginProblem } from './http/cors'
import { DEFAULT_MAX_EVENT_LOOP_DELAY_MS } from './http/loadShedder'
import { DEFAULT_ANSWER_CACHE_BYTES } from './ofrep/answerCache'
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from './ofrep/schemas'
import { MAX_LEASE_TTL_MS, MIN_LEASE_TTL_MS } from './store/leaseKeeper'

// Options given in code are a boundary too: a typo'd port or an empty API key must fail at start,
// with a message, not at the first request (or never, as an empty key once silently did).

const positiveInt = z.number().int().positive()
// A timer's delay: Node fires one past 2^31 - 1 ms (24.8 days) at once, so a larger value would
// turn a drain or keep-alive timeout into an instant one.
const timerMs = (min: number) => z.number().int().min(min).max(2_147_483_647)
/**
 * An interval in milliseconds, with the bounds in its message: 0, NaN or a negative made a timer
 * fire every millisecond (or fall back to the default without a word), and a number of seconds
 * given where milliseconds are asked (`heartbeatMs: 20`) is under any sane floor.
 */
const intervalMs = (name: string, min: number, max = 2_147_483_647) => bounded(`${name} is in milliseconds: a whole number from ${min} to ${max}`, min, max)
const wholeSeconds = (name: string, min: number, max: number) => bounded(`${name} is in seconds: a whole number from ${min} to ${max}`, min, max)
const bounded = (message: string, min: number, max: number) => z.number({ error: message }).int(message).min(min, message).max(max, message)
/**
 * Whether a client can present `key` in a header: printable ASCII only. fetch refuses any
 * character past U+00FF and Node reads header bytes as Latin-1, so a UTF-8 key (`ключ`) or one
 * with a control character never matches: the server would answer 401 to everyone.
 */
export function isPresentableKey(key: string): boolean {
  return /^[\x20-\x7e]*$/.test(key)
}

/** An HTTP header name (RFC 9110 token), as `--forward-header` and `snapshot --header` take one. */
export const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/

/**
 * A zod refinement from a check that says why a value is refused (or undefined when it is fine),
 * so the option's own message (naming the option) is the issue's.
 */
export const refusedWhen =
  (problem: (value: string) => string | undefined) =>
  (value: string, ctx: z.RefinementCtx): void => {
    const message = problem(value)
    if (message) ctx.addIssue({ code: 'custom', message })
  }

/** Why a key fails {@link isPresentableKey}, after its name. */
export const UNPRESENTABLE_KEY = 'has characters a header cannot carry (printable ASCII only): no client could present it'

const isFunction = z.custom<(...args: unknown[]) => unknown>((value) => typeof value === 'function', 'expected a function')

/**
 * The live-update hub's timers, checked by `createFlagHandler` (as `liveUpdates`) and by
 * `createStreamHub` itself, for a host that builds its own hub: a heartbeat of 0 pinged every
 * open stream every millisecond.
 */
export const streamHubOptionsSchema = z
  .object({
    maxConnections: positiveInt.optional(),
    maxConnectionsPerClient: positiveInt.optional(),
    // At most half the minute after which Holdfast clients (heartbeatTimeoutMs) and proxies such as
    // nginx (proxy_read_timeout) drop a stream that sent nothing: 60,000 or more dropped every quiet
    // stream each minute, and every tab reconnected and refetched once a minute.
    heartbeatMs: bounded('heartbeatMs is in milliseconds: a whole number from 1000 to 30000 (clients and proxies drop a stream silent for 60 s)', 1000, 30_000).optional(),
    retryMs: intervalMs('retryMs', 100).optional(),
    recoveryWindowMs: intervalMs('recoveryWindowMs', 0).optional(),
    inactivityDelaySec: wholeSeconds('inactivityDelaySec', 1, 2_147_483).optional(),
    now: isFunction.optional(),
  })
  .loose()

/** Checks `createStreamHub` options; throws an `Error` naming every problem. */
export function readStreamHubOptions<T extends object>(options: T): T {
  checked(streamHubOptionsSchema, options)
  return options
}

/** The checked options of `createFlagHandler` (the listening ones are checked by `createFlagServer`). */
export const handlerOptionsSchema = z
  .object({
    flags: z.union([z.string().min(1, 'the flags path is empty'), z.object({ flags: z.record(z.string(), z.unknown()) }).loose()]).optional(),
    source: z.object({ open: isFunction, current: isFunction }).loose().optional(),
    eventsFile: z.string().min(1, 'eventsFile is empty').optional(),
    eventsMaxBytes: positiveInt.optional(),
    eventsKeep: positiveInt.optional(),
    eventsDedupe: z.object({ maxIds: positiveInt.optional(), windowMs: z.number().positive().optional() }).loose().optional(),
    eventsUpstream: z
      .string()
      .superRefine(refusedWhen((url) => httpUrlProblem(url, 'eventsUpstream')))
      .optional(),
    eventsSpoolDir: z.string().min(1, 'eventsSpoolDir is empty').optional(),
    eventsDeadLetterMaxBytes: positiveInt.optional(),
    eventsUpstreamHeaders: z.record(z.string(), z.string()).optional(),
    apiKey: z
      .string()
      .refine((key) => key.trim() !== '', 'the API key is empty; give a real key, or none to run without one')
      .refine((key) => key === key.trim(), 'the API key starts or ends with whitespace')
      .refine(isPresentableKey, `the API key ${UNPRESENTABLE_KEY}`)
      // false: no key, on purpose (a misspelt apiKey beside it is then not refused).
      .or(z.literal(false))
      .optional(),
    // HTTP strips whitespace around a header value: a key that has some (a secret file's trailing
    // newline) could never be presented, so refresh would answer 401 to the right key forever.
    adminKey: z
      .string()
      .refine((key) => key.trim() !== '', 'the admin key is empty; give a real key, or none to leave refresh off')
      .refine((key) => key === key.trim(), 'the admin key starts or ends with whitespace')
      .refine(isPresentableKey, `the admin key ${UNPRESENTABLE_KEY}`)
      .optional(),
    corsOrigin: z
      .string()
      .min(1)
      .superRefine(refusedWhen((origin) => corsOriginProblem(origin, 'corsOrigin')))
      .optional(),
    demoControls: z.boolean().default(false),
    strictValidation: z.boolean().default(true),
    maxShrinkPercent: z.number().min(0).max(100).default(DEFAULT_MAX_SHRINK_PERCENT),
    limits: z
      .object({
        maxBodyBytes: positiveInt.max(1_048_576).optional(),
        maxAttributes: positiveInt.optional(),
        maxDepth: positiveInt.optional(),
        maxStringLength: positiveInt.optional(),
        maxTargetingKeyLength: positiveInt.optional(),
      })
      .default({}),
    maxEventLoopDelayMs: z.number().min(0).default(DEFAULT_MAX_EVENT_LOOP_DELAY_MS),
    answerCacheBytes: z.number().int().min(0).default(DEFAULT_ANSWER_CACHE_BYTES),
    // The relay's files and bounds: '' would resolve to the working directory, and NaN slips
    // through every `Math.max` and `>` (keepGenerations NaN pruned all but the newest generation,
    // maxContexts NaN never evicted, heldAnswerAfterMs NaN fired at once).
    dataDir: z.string().min(1, 'dataDir is empty').optional(),
    snapshot: z.string().min(1, 'snapshot is empty').optional(),
    keepGenerations: positiveInt.optional(),
    maxContexts: positiveInt.optional(),
    maxContextBytes: positiveInt.optional(),
    // NaN made every request wait for a slot that never came (a relay that never asked upstream).
    maxUpstreamRequests: positiveInt.optional(),
    // A name no request can carry forwarded nothing, without a word (the CLI refuses it).
    forwardHeaders: z.array(z.string().regex(HEADER_NAME, 'each must be a header name')).optional(),
    fetch: isFunction.optional(),
    heldAnswerAfterMs: timerMs(0).optional(),
    refreshAnswerWithinMs: timerMs(1).optional(),
    reaskRoundMs: timerMs(1).optional(),
    // The live-update hub's timers: a heartbeat of 0 pinged every open stream every millisecond.
    // (`false`, and `true` as the client's option reads, pass before the object's checks: a union
    // would hide which field failed.)
    liveUpdates: z.preprocess(
      (value) => (value === false || value === true ? undefined : value),
      streamHubOptionsSchema.optional(),
    ),
    // The lease is renewed every third of it: 0 or NaN renewed it in a tight loop against the store.
    sharedStore: z.object({ leaseTtlMs: intervalMs('leaseTtlMs', MIN_LEASE_TTL_MS, MAX_LEASE_TTL_MS).optional() }).loose().optional(),
  })
  .loose()
  .refine((o) => o.flags !== undefined || o.source !== undefined || o.flagsUrl !== undefined || o.upstream !== undefined, {
    message: 'flags is required (a flagd file path or a definitions object), or flagsUrl, or upstream',
    path: ['flags'],
  })
  .refine((o) => [o.flags, o.source, o.flagsUrl, o.upstream].filter((x) => x !== undefined).length <= 1, {
    message: 'give exactly one of flags, flagsUrl, upstream, source',
    path: ['flags'],
  })
  // Options that would do nothing with the source given (the CLI refuses its own such options):
  // a relay key in upstreamHeaders beside `upstream` was never sent, and nothing said so.
  .refine((o) => o.upstreamHeaders === undefined || o.flagsUrl !== undefined, {
    message: 'upstreamHeaders goes with flagsUrl (headers the relay sends to it); with upstream, the headers passed on are those named in forwardHeaders',
    path: ['upstreamHeaders'],
  })
  // A flags file (or object) is watched, not polled, and has no upstream to answer 401: both
  // started and did nothing, without a word (the CLI refuses --poll-interval and
  // --on-upstream-unauthorized without a URL). A custom source may be a relay's: taken.
  .refine((o) => o.pollIntervalSeconds === undefined || o.flags === undefined, {
    message: 'pollIntervalSeconds goes with flagsUrl or upstream (a flags file is watched, not polled)',
    path: ['pollIntervalSeconds'],
  })
  .refine((o) => o.onUpstreamUnauthorized === undefined || o.flags === undefined, {
    message: 'onUpstreamUnauthorized goes with flagsUrl or upstream (a flags file has no upstream to answer 401)',
    path: ['onUpstreamUnauthorized'],
  })
  .refine((o) => o.forwardHeaders === undefined || o.upstream !== undefined, {
    message: 'forwardHeaders goes with upstream (the request headers passed to it)',
    path: ['forwardHeaders'],
  })
  .refine((o) => (o.dataDir === undefined && o.snapshot === undefined) || o.source === undefined, {
    message: 'dataDir and snapshot do not apply to a custom source',
    path: ['dataDir'],
  })

/** Checked options with their defaults filled in. */
export type HandlerConfig = z.output<typeof handlerOptionsSchema>

/** Checks `createFlagHandler` options; throws an `Error` naming every problem. */
export function readHandlerOptions(options: unknown): HandlerConfig {
  return checked(handlerOptionsSchema, options)
}

/** The listening options of `createFlagServer`, with their defaults. */
export const listenOptionsSchema = z
  .object({
    port: z.number().int().min(0).max(65535).default(8787),
    host: z.string().min(1).default('127.0.0.1'),
    maxConnections: positiveInt.default(1024),
    headersTimeoutMs: timerMs(1).default(10_000),
    requestTimeoutMs: timerMs(1).default(30_000),
    keepAliveTimeoutMs: timerMs(1).default(5_000),
    drainTimeoutMs: timerMs(0).default(10_000),
  })
  .loose()

/** Checks `createFlagServer`'s listening options; throws an `Error` naming every problem. */
export function readListenOptions(options: unknown): z.output<typeof listenOptionsSchema> {
  return checked(listenOptionsSchema, options)
}

/** The request limits in force: the defaults with the configured ones on top. */
export function evaluationRequestLimits(overrides: Partial<RequestLimits> = {}): RequestLimits {
  const limits = { ...DEFAULT_REQUEST_LIMITS }
  for (const [name, value] of Object.entries(overrides)) if (value !== undefined) limits[name as keyof RequestLimits] = value
  return Object.freeze(limits)
}

function checked<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const problems = result.error.issues.map((issue) => `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`)
  throw new Error(`[holdfast-server] invalid options: ${problems.join('; ')}`)
}

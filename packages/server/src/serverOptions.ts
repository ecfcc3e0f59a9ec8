// The server's command line, as parseCliArgs read it (cliOptions.ts), checked against its schema
// and turned into FlagServerOptions, with the environment's keys and URLs; or what is wrong.
import { z } from 'zod'
import { readCliNumber } from './cliArgs'
import type { CliValues } from './cliOptions'
import type { FlagServerOptions } from './flagServer'
import { corsOriginProblem } from './http/cors'
import { httpUrlProblem } from './flags/upstreamFetch'
import { unforwardableReason } from './flags/headerNames'
import { logOptions, type LogOptions } from './logOptions'
import { HEADER_NAME, isPresentableKey, refusedWhen, UNPRESENTABLE_KEY } from './options'
import { namespaceNameProblem } from './store/storeNamespace'


// A number option: out of range, negative, blank or not digits, it is refused naming the range and
// what was given (before, `--max-shrink=-5` and `--poll-interval .5` read "must be a number").
const numberArg = (name: string, min: number, max: number, whole: boolean) =>
  z.string().transform((text, ctx) => {
    const value = readCliNumber(text, whole)
    if (value >= min && value <= max) return value
    ctx.addIssue({ code: 'custom', message: `--${name} must be from ${min} to ${max} (${whole ? 'a whole number' : 'a number'}), got ${JSON.stringify(text)}` })
    return z.NEVER
  })

const intArg = (name: string, min: number, max: number) => numberArg(name, min, max, true)

const secondsArg = (name: string, min: number, max: number) => numberArg(name, min, max, false)

const httpUrlArg = (name: string) => z.string().superRefine(refusedWhen((url) => httpUrlProblem(url, `--${name}`)))

const cliSchema = z.object({
  flags: z.string().min(1, '--flags is empty').optional(),
  port: intArg('port', 0, 65535).optional(),
  host: z.string().min(1, '--host is empty').optional(),
  'events-file': z.string().min(1, '--events-file is empty').optional(),
  'events-max-bytes': intArg('events-max-bytes', 1, Number.MAX_SAFE_INTEGER).optional(),
  'events-keep': intArg('events-keep', 1, 1000).optional(),
  'events-upstream': httpUrlArg('events-upstream').optional(),
  'events-spool': z.string().min(1, '--events-spool is empty').optional(),
  'events-dead-letter-max-bytes': intArg('events-dead-letter-max-bytes', 1024, Number.MAX_SAFE_INTEGER).optional(),
  'events-write-timeout': intArg('events-write-timeout', 100, 600_000).optional(),
  'api-key': z.string().optional(),
  'cors-origin': z
    .string()
    .min(1, '--cors-origin is empty')
    .superRefine(refusedWhen((origin) => corsOriginProblem(origin, '--cors-origin')))
    .optional(),
  'demo-controls': z.boolean().optional(),
  lenient: z.boolean().optional(),
  'max-event-loop-delay': intArg('max-event-loop-delay', 0, 60_000).optional(),
  'max-connections': intArg('max-connections', 1, 1_000_000).optional(),
  'flags-url': httpUrlArg('flags-url').optional(),
  upstream: httpUrlArg('upstream').optional(),
  'data-dir': z.string().min(1, '--data-dir is empty').optional(),
  snapshot: z.string().min(1, '--snapshot is empty').optional(),
  'poll-interval': secondsArg('poll-interval', 0.05, 86_400).optional(),
  'max-shrink': secondsArg('max-shrink', 0, 100).optional(),
  'admin-key': z.string().optional(),
  'on-upstream-unauthorized': z.string().regex(/^(keep|clear|clear-after=\d+(\.\d+)?)$/, '--on-upstream-unauthorized must be keep, clear or clear-after=SECONDS').optional(),
  'forward-header': z
    .array(
      z
        .string()
        .regex(HEADER_NAME, '--forward-header must be a header name')
        .superRefine(
          refusedWhen((name) =>
            unforwardableReason(name) === undefined ? undefined : `--forward-header ${name}: ${unforwardableReason(name)}; it cannot be forwarded`,
          ),
        ),
    )
    .optional(),
  'upstream-timeout': secondsArg('upstream-timeout', 0.001, 600).optional(),
  redis: z.string().regex(/^rediss?:\/\/[^/]/i, '--redis must be a redis:// or rediss:// URL').optional(),
  'redis-lease-ttl': secondsArg('redis-lease-ttl', 0.1, 3600).optional(),
  'redis-namespace': z
    .string()
    .superRefine(refusedWhen((name) => namespaceNameProblem(name, '--redis-namespace')))
    .optional(),
  'log-format': z.string().optional(),
  'log-level': z.string().optional(),
  'no-live-updates': z.boolean().optional(),
  'max-streams': intArg('max-streams', 1, 1_000_000).optional(),
  'max-streams-per-client': intArg('max-streams-per-client', 1, 1_000_000).optional(),
})
  .refine((v) => v.flags !== undefined || v['flags-url'] !== undefined || v.upstream !== undefined, '--flags is required (or --flags-url URL, or --upstream URL)')
  .refine((v) => [v.flags, v['flags-url'], v.upstream].filter((x) => x !== undefined).length <= 1, 'give only one of --flags FILE, --flags-url URL, --upstream URL')

/**
 * Turns parsed CLI values (and the environment, for `HOLDFAST_API_KEY`) into
 * {@link FlagServerOptions}, or says what is wrong. An API key given but empty (`--api-key ''`,
 * `HOLDFAST_API_KEY=`) is an error: a deployment that meant to set a key must not start open.
 */
export function buildServerOptions(values: CliValues, env: NodeJS.ProcessEnv): { ok: true; options: FlagServerOptions; log: LogOptions } | { ok: false; error: string; log?: LogOptions } {
  // Read first, from the values as given (two strings): every problem found after them is said in
  // the format they ask for (`log`), as the running server's lines are.
  const log = logOptions(values, env)
  if (!log.ok) return log
  const failed = (error: string) => ({ ok: false as const, error, log: log.options })
  const parsed = cliSchema.safeParse(values)
  if (!parsed.success) return failed(parsed.error.issues[0].message)
  const v = parsed.data
  const built = serverOptions(v, env, log.options)
  return built.ok ? built : failed(built.error)
}

function serverOptions(v: z.output<typeof cliSchema>, env: NodeJS.ProcessEnv, log: LogOptions): { ok: true; options: FlagServerOptions; log: LogOptions } | { ok: false; error: string } {
  const apiKey = v['api-key'] ?? env.HOLDFAST_API_KEY
  const adminKey = v['admin-key'] ?? env.HOLDFAST_ADMIN_KEY
  if (adminKey !== undefined && adminKey.trim() === '') {
    return { ok: false, error: `${v['admin-key'] !== undefined ? '--admin-key' : 'HOLDFAST_ADMIN_KEY'} is empty: give a real key, or leave it unset to keep refresh off` }
  }
  const ignored = ignoredOption(v)
  if (ignored) return { ok: false, error: ignored }
  const redis = redisOptions(v, env)
  if (!redis.ok) return redis
  if (apiKey !== undefined && apiKey.trim() === '') {
    const from = v['api-key'] !== undefined ? '--api-key' : 'HOLDFAST_API_KEY'
    return { ok: false, error: `${from} is empty: give a real key, or leave it unset to run without one (refusing to start open)` }
  }
  const keys = [
    [v['api-key'] !== undefined ? '--api-key' : 'HOLDFAST_API_KEY', apiKey],
    [v['admin-key'] !== undefined ? '--admin-key' : 'HOLDFAST_ADMIN_KEY', adminKey],
  ] as const
  for (const [from, key] of keys) {
    const problem = key === undefined ? undefined : keyProblem(key)
    if (problem) return { ok: false, error: `${from} ${problem}` }
  }
  if (v['events-upstream'] !== undefined && v['events-file'] !== undefined) {
    return { ok: false, error: '--events-upstream and --events-file cannot be combined: events are either kept here or forwarded' }
  }
  const upstreamKey = env.HOLDFAST_EVENTS_UPSTREAM_KEY
  // Set but blank: a secret that did not resolve. Forwarding without it would only earn 401s.
  if (v['events-upstream'] !== undefined && upstreamKey !== undefined && upstreamKey.trim() === '') {
    return { ok: false, error: 'HOLDFAST_EVENTS_UPSTREAM_KEY is empty: give a real key, or leave it unset to forward without one' }
  }
  const upstreamKeyProblem = v['events-upstream'] !== undefined && upstreamKey !== undefined ? keyProblem(upstreamKey) : undefined
  if (upstreamKeyProblem) return { ok: false, error: `HOLDFAST_EVENTS_UPSTREAM_KEY ${upstreamKeyProblem}` }
  return {
    ok: true,
    log,
    options: {
      eventsMaxBytes: v['events-max-bytes'],
      eventsKeep: v['events-keep'],
      eventsUpstream: v['events-upstream'],
      eventsSpoolDir: v['events-spool'],
      eventsWriteTimeoutMs: v['events-write-timeout'],
      eventsDeadLetterMaxBytes: v['events-dead-letter-max-bytes'],
      eventsUpstreamHeaders: upstreamKey ? { Authorization: `Bearer ${upstreamKey}` } : undefined,
      flags: v.flags,
      port: v.port,
      host: v.host,
      eventsFile: v['events-file'],
      apiKey,
      corsOrigin: v['cors-origin'],
      demoControls: v['demo-controls'] ?? false,
      strictValidation: !v.lenient,
      maxEventLoopDelayMs: v['max-event-loop-delay'],
      maxConnections: v['max-connections'],
      ...relayOptions(v, env),
      ...redis.options,
      ...liveUpdateOptions(v),
    },
  }
}

// An option that would do nothing beside the others given, refused as --redis-lease-ttl without
// --redis is: the operator who typed it expects it to act (answers keyed by --forward-header on a
// --flags-url relay, a --events-spool that nothing is spooled to).
function ignoredOption(v: z.output<typeof cliSchema>): string | undefined {
  const rules: Array<[boolean, string]> = [
    [v['forward-header'] !== undefined && v.upstream === undefined, '--forward-header goes with --upstream (it names the request headers passed to the upstream)'],
    [v['poll-interval'] !== undefined && v['flags-url'] === undefined && v.upstream === undefined, '--poll-interval goes with --flags-url or --upstream (a --flags file is watched, not polled)'],
    [v['on-upstream-unauthorized'] !== undefined && v['flags-url'] === undefined && v.upstream === undefined, '--on-upstream-unauthorized goes with --flags-url or --upstream (a --flags file has no upstream to answer 401)'],
    [v['upstream-timeout'] !== undefined && v['flags-url'] === undefined && v.upstream === undefined, '--upstream-timeout goes with --flags-url or --upstream (a --flags file has no upstream to wait for)'],
    [v['events-spool'] !== undefined && v['events-upstream'] === undefined, '--events-spool goes with --events-upstream (it is where events wait to be forwarded)'],
    [v['events-keep'] !== undefined && v['events-file'] === undefined, '--events-keep goes with --events-file (rotated events files)'],
    [v['events-max-bytes'] !== undefined && v['events-file'] === undefined, '--events-max-bytes goes with --events-file (when to rotate it)'],
    [v['events-dead-letter-max-bytes'] !== undefined && v['events-upstream'] === undefined, '--events-dead-letter-max-bytes goes with --events-upstream (it bounds the events the upstream refused)'],
    [v['events-write-timeout'] !== undefined && v['events-file'] === undefined && v['events-upstream'] === undefined, '--events-write-timeout goes with --events-file or --events-upstream (the writes it bounds)'],
    [v['max-streams'] !== undefined && v['no-live-updates'] === true, '--max-streams has no streams to bound with --no-live-updates'],
    [v['max-streams-per-client'] !== undefined && v['no-live-updates'] === true, '--max-streams-per-client has no streams to bound with --no-live-updates'],
  ]
  return rules.find(([ignored]) => ignored)?.[1]
}

// --no-live-updates, --max-streams and --max-streams-per-client, from the parsed values.
function liveUpdateOptions(v: z.output<typeof cliSchema>): Partial<FlagServerOptions> {
  if (v['no-live-updates']) return { liveUpdates: false }
  const bounds = {
    ...(v['max-streams'] === undefined ? {} : { maxConnections: v['max-streams'] }),
    ...(v['max-streams-per-client'] === undefined ? {} : { maxConnectionsPerClient: v['max-streams-per-client'] }),
  }
  return Object.keys(bounds).length === 0 ? {} : { liveUpdates: bounds }
}

// Why a key (already known not to be blank) could never be presented in a header, or undefined.
// Said here with the operator's option or variable, not later by createFlagServer with the name in
// code (`apiKey`).
function keyProblem(key: string): string | undefined {
  if (key !== key.trim()) return 'starts or ends with whitespace, which a header cannot carry (a secret file\'s trailing newline?)'
  if (!isPresentableKey(key)) return UNPRESENTABLE_KEY
  return undefined
}

// The relay's options (CONTRACT §9), from the parsed values.
function relayOptions(v: z.output<typeof cliSchema>, env: NodeJS.ProcessEnv): Partial<FlagServerOptions> {
  return {
    flagsUrl: v['flags-url'],
    upstream: v.upstream,
    dataDir: v['data-dir'],
    snapshot: v.snapshot,
    pollIntervalSeconds: v['poll-interval'],
    maxShrinkPercent: v['max-shrink'],
    adminKey: v['admin-key'] ?? env.HOLDFAST_ADMIN_KEY,
    onUpstreamUnauthorized: v['on-upstream-unauthorized'] as FlagServerOptions['onUpstreamUnauthorized'],
    forwardHeaders: v['forward-header'],
    upstreamTimeoutMs: v['upstream-timeout'] === undefined ? undefined : v['upstream-timeout'] * 1000,
  }
}

// --redis, --redis-lease-ttl and --redis-namespace (or HOLDFAST_REDIS_URL, HOLDFAST_REDIS_NAMESPACE), from the parsed values.
function redisOptions(v: z.output<typeof cliSchema>, env: NodeJS.ProcessEnv): { ok: true; options: Partial<FlagServerOptions> } | { ok: false; error: string } {
  // Set but empty is refused like a blank one: a URL that did not resolve must not quietly start a
  // relay that shares nothing with the others.
  if (v.redis === undefined && env.HOLDFAST_REDIS_URL !== undefined && env.HOLDFAST_REDIS_URL.trim() === '') {
    return { ok: false, error: 'HOLDFAST_REDIS_URL is empty: give a redis:// or rediss:// URL, or leave it unset to run without Redis' }
  }
  const url = v.redis ?? env.HOLDFAST_REDIS_URL
  // Read like HOLDFAST_REDIS_URL: set but empty is a value that did not resolve, not "no name"
  // (which would join this relay to the unnamed fleet of its source).
  const namespace = v['redis-namespace'] ?? env.HOLDFAST_REDIS_NAMESPACE
  if (v['redis-namespace'] === undefined && namespace !== undefined) {
    if (namespace.trim() === '') return { ok: false, error: 'HOLDFAST_REDIS_NAMESPACE is empty: give a name, or leave it unset for the unnamed namespace of the source' }
    const problem = namespaceNameProblem(namespace, 'HOLDFAST_REDIS_NAMESPACE')
    if (problem) return { ok: false, error: problem }
  }
  if (url === undefined) {
    if (v['redis-lease-ttl'] !== undefined) return { ok: false, error: '--redis-lease-ttl needs --redis URL' }
    // As HOLDFAST_REDIS_URL given to a --flags server is: set, the variable says Redis was meant
    // (its URL variable not mounted, or misspelt), and the relay would start alone without a word.
    if (namespace !== undefined) return { ok: false, error: `${v['redis-namespace'] === undefined ? 'HOLDFAST_REDIS_NAMESPACE is set, and ' : ''}--redis-namespace needs --redis URL (or HOLDFAST_REDIS_URL)` }
    return { ok: true, options: {} }
  }
  if (!/^rediss?:\/\/[^/]/i.test(url)) return { ok: false, error: 'HOLDFAST_REDIS_URL must be a redis:// or rediss:// URL' }
  if (v['flags-url'] === undefined && v.upstream === undefined) {
    // Named as the operator gave it: set for a fleet of relays, the variable may reach a --flags server.
    const from = v.redis === undefined ? 'HOLDFAST_REDIS_URL is set, and ' : ''
    return { ok: false, error: `${from}--redis goes with --flags-url or --upstream (a local flags file has nothing to share)` }
  }
  // Proxy mode has no lease: every relay forwards its own requests and shares the answers.
  if (v['redis-lease-ttl'] !== undefined && v['flags-url'] === undefined) {
    return { ok: false, error: '--redis-lease-ttl goes with --flags-url (with --upstream every relay asks the upstream itself: there is no lease)' }
  }
  return {
    ok: true,
    options: { redis: { url, ...(v['redis-lease-ttl'] === undefined ? {} : { leaseTtlMs: v['redis-lease-ttl'] * 1000 }), ...(namespace === undefined ? {} : { namespace }) } },
  }
}

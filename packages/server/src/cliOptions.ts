import { parseArgs } from 'node:util'
import { z } from 'zod'
import type { FlagServerOptions } from './flagServer'
import { corsOriginProblem } from './http/cors'
import { httpUrlProblem } from './flags/upstreamFetch'
import { unforwardableReason } from './flags/headerNames'
import { HEADER_NAME, isPresentableKey, refusedWhen, UNPRESENTABLE_KEY } from './options'
import { namespaceNameProblem } from './store/storeNamespace'

// Every command-line option in one table: its parseArgs type, its help line, and how it maps onto
// FlagServerOptions. Adding an option is adding a row (and, if it takes a value, a line in
// `buildServerOptions`), so branches that each add options merge without touching each other.

interface CliOption {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  /** `--name ARG` as shown in the help. */
  arg?: string
  /** Help text (first line); continuation lines are indented under it. */
  help: string
}

/** The CLI options of `holdfast-server`, in the order `--help` lists them. */
export const CLI_OPTIONS = {
  flags: { type: 'string', arg: 'FILE', help: 'flagd JSON flag definitions, watched (or --flags-url, or --upstream)' },
  port: { type: 'string', arg: 'N', help: 'port to listen on; 0 picks a free one (default 8787)' },
  host: { type: 'string', arg: 'HOST', help: 'interface to bind (default 127.0.0.1)' },
  'events-file': { type: 'string', arg: 'FILE', help: 'append accepted events here as JSON Lines; dedupe survives restarts' },
  'events-max-bytes': { type: 'string', arg: 'N', help: 'rotate the events file before it passes N bytes (default: never)' },
  'events-keep': { type: 'string', arg: 'N', help: 'rotated events files kept, events.jsonl.1 … .N (default 5)' },
  'events-upstream': {
    type: 'string',
    arg: 'URL',
    help: 'forward accepted events to this events endpoint through a durable spool\n(instead of --events-file); HOLDFAST_EVENTS_UPSTREAM_KEY, if set, is sent\nas "Authorization: Bearer KEY"',
  },
  'events-spool': { type: 'string', arg: 'DIR', help: 'the spool of --events-upstream (default: events-spool in --data-dir,\nelse .holdfast/events-spool)' },
  'events-dead-letter-max-bytes': {
    type: 'string',
    arg: 'N',
    help: 'bound of the dead-letter file (<spool>/dead-letter/dead-letter.ndjson) where\nevents the upstream refuses for good (413, 400/422) are kept (default 64 MiB)',
  },
  'events-write-timeout': {
    type: 'string',
    arg: 'MS',
    help: 'answer an events request 503 + Retry-After when the events file or spool\nhas not stored its batch within MS (a hung mount; default 4000)',
  },
  'api-key': {
    type: 'string',
    arg: 'KEY',
    help: 'require "Authorization: Bearer KEY" or "X-API-Key: KEY"\n(or set HOLDFAST_API_KEY, which keeps the key out of the process list;\nan empty key, or one a header cannot carry (not printable ASCII), is refused)',
  },
  'cors-origin': { type: 'string', arg: 'ORIGIN', help: 'allow only this origin, e.g. https://app.example.com (default: any origin)' },
  'demo-controls': { type: 'boolean', help: 'enable /demo/outage and /demo/reset-events' },
  lenient: { type: 'boolean', help: 'warn about flagd schema problems instead of refusing the file' },
  'max-event-loop-delay': { type: 'string', arg: 'MS', help: 'answer 503 + Retry-After past this event-loop delay (default 500; 0 = never)' },
  'max-connections': { type: 'string', arg: 'N', help: 'most connections open at once (default 1024)' },
  // Live updates (the OFREP event stream): one block of their own.
  'no-live-updates': { type: 'boolean', help: 'no event stream: bulk answers advertise none, /holdfast/v1/stream is 404' },
  'max-streams': { type: 'string', arg: 'N', help: 'most event streams open at once, at most half of --max-connections; more get 503 (default 10000)' },
  'max-streams-per-client': {
    type: 'string',
    arg: 'N',
    help: 'most event streams one client address (IPv6: one /64) holds at once; more get 503\n(default: none; behind a proxy or load balancer every stream comes from its address:\nbound clients there instead)',
  },
  // The relay (CONTRACT §9): one block, so branches adding other options do not collide here.
  'flags-url': { type: 'string', arg: 'URL', help: 'flagd definitions over HTTP(S), polled with If-None-Match' },
  upstream: { type: 'string', arg: 'URL', help: 'relay an OFREP server: each bulk request forwarded for its context,\nmerged into that context\'s last known good' },
  'data-dir': { type: 'string', arg: 'DIR', help: 'keep the last good flags here (crash-safe generations) for restarts' },
  snapshot: { type: 'string', arg: 'FILE', help: 'a build-time snapshot (holdfast-server snapshot ...): the oldest layer' },
  'poll-interval': { type: 'string', arg: 'SECONDS', help: 'how often --flags-url is polled; with --upstream, how often the held\ncontexts are asked again while event streams are open (with --redis: on any relay\nof the fleet) (default 10)' },
  'max-shrink': { type: 'string', arg: 'PERCENT', help: 'refuse a new flag set dropping more than this share of the flags\nheld (default 50); zero flags are always refused' },
  'admin-key': { type: 'string', arg: 'KEY', help: 'enable POST /holdfast/v1/refresh for "Authorization: Bearer KEY"\n(or set HOLDFAST_ADMIN_KEY)' },
  'on-upstream-unauthorized': { type: 'string', arg: 'POLICY', help: 'keep | clear | clear-after=SECONDS: what an upstream 401/403 does\nto what is held (default keep)' },
  'forward-header': { type: 'string', multiple: true, arg: 'NAME', help: 'request header passed upstream and part of the cache key\n(repeatable; default Authorization)' },
  'upstream-timeout': { type: 'string', arg: 'SECONDS', help: 'how long one upstream request may take (default 5)' },
  // Relays sharing one store in Redis (CONTRACT §9 --redis): one block.
  redis: { type: 'string', arg: 'URL', help: 'share one store with the other relays of this source in Redis: one polls,\nthe others take each version from Redis (or set HOLDFAST_REDIS_URL,\nwhich keeps a password out of the process list)' },
  'redis-lease-ttl': { type: 'string', arg: 'SECONDS', help: 'with --flags-url: the polling relay\'s lease; another takes over within it\nwhen that one dies (default 15)' },
  'redis-namespace': {
    type: 'string',
    arg: 'NAME',
    help: 'share only with relays given the same NAME (and source and credentials):\nkeeps environments whose source URL is written the same apart on one Redis;\n1 to 64 of A-Z a-z 0-9 . _ - (or set HOLDFAST_REDIS_NAMESPACE; default: none,\nthe namespace is a hash of the source and credentials alone)',
  },
  // The command's own log (see logWriter.ts): one block.
  'log-format': { type: 'string', arg: 'FORMAT', help: 'text | json: text lines prefixed [holdfast-server], or one JSON object a line\n{"time","level","msg"} (or set HOLDFAST_LOG_FORMAT; default text)' },
  'log-level': { type: 'string', arg: 'LEVEL', help: 'error | warn | info: the least severe lines written (or set HOLDFAST_LOG_LEVEL;\ndefault info)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
  version: { type: 'boolean', help: 'print the version of @holdfast/server and exit' },
} as const satisfies Record<string, CliOption>

/** What `parseArgs` gives back for {@link CLI_OPTIONS}. */
export type CliValues = {
  [K in keyof typeof CLI_OPTIONS]?: (typeof CLI_OPTIONS)[K]['type'] extends 'boolean' ? boolean : (typeof CLI_OPTIONS)[K] extends { multiple: true } ? string[] : string
}

/**
 * Parses `args` (the command line after the program) against {@link CLI_OPTIONS}, or says what is
 * wrong: an unknown option, a missing value, or a single-valued option given more than once.
 * `parseArgs` alone keeps the last of a repeated option, so `--flags a.json --flags b.json` would
 * serve b.json and `--api-key A --api-key B` would let only B in, without a word; which one the
 * operator meant cannot be known, so neither is guessed.
 */
export function parseCliArgs(args: string[]): { ok: true; values: CliValues } | { ok: false; error: string } {
  let parsed
  try {
    parsed = parseArgs({ args: negativeValuesJoined(args, CLI_OPTIONS), options: CLI_OPTIONS, strict: true, tokens: true })
  } catch (error) {
    return { ok: false, error: (error as Error).message }
  }
  const repeated = repeatedOption(parsed.tokens, CLI_OPTIONS)
  if (repeated) return { ok: false, error: repeated }
  return { ok: true, values: parsed.values as CliValues }
}

/**
 * `args` with each `--name -5` (an option that takes a value, then a negative number) joined into
 * `--name=-5`. `parseArgs` refuses a value starting with a dash as "argument is ambiguous … use
 * '--name=-XYZ'", which names no range: joined, the value reaches the option's own check, which
 * says what is wanted ("--max-shrink must be from 0 to 100 …, got \"-5\""). No option name starts
 * with a digit or a dot, so nothing meant as an option is taken as a value.
 */
export function negativeValuesJoined(args: readonly string[], options: Record<string, { type: string }>): string[] {
  const joined: string[] = []
  for (let i = 0; i < args.length; i++) {
    const name = /^--([^=]+)$/.exec(args[i])?.[1]
    if (name !== undefined && options[name]?.type === 'string' && i + 1 < args.length && /^-\.?\d/.test(args[i + 1])) {
      joined.push(`${args[i]}=${args[++i]}`)
    } else if (args[i] === '--') {
      joined.push(...args.slice(i))
      break
    } else joined.push(args[i])
  }
  return joined
}

/**
 * Why a `parseArgs` result must be refused because an option that takes one value was given more
 * than once (`parseArgs` keeps the last), or undefined. A repeated switch (`--lenient --lenient`)
 * and a `multiple` option are fine.
 */
export function repeatedOption(tokens: ReadonlyArray<{ kind: string; name?: string }>, options: Record<string, { type: string; multiple?: boolean }>): string | undefined {
  const seen = new Map<string, number>()
  for (const token of tokens) if (token.kind === 'option' && token.name !== undefined) seen.set(token.name, (seen.get(token.name) ?? 0) + 1)
  for (const [name, count] of seen) {
    const option = options[name]
    if (count > 1 && option?.type === 'string' && !option.multiple) return `--${name} is given ${count} times: give it once`
  }
  return undefined
}

/** The `--help` text. */
export function usage(): string {
  const rows = Object.entries(CLI_OPTIONS as Record<string, CliOption>).map(([name, option]) => {
    const flag = `${option.short ? `-${option.short}, ` : ''}--${name}${option.arg ? ` ${option.arg}` : ''}`
    return [flag, option.help.split('\n')] as const
  })
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2
  const lines = rows.flatMap(([flag, help]) => help.map((line, i) => `  ${(i === 0 ? flag : '').padEnd(width)}${line}`))
  return `Usage: holdfast-server (--flags flags.json | --flags-url URL | --upstream URL) [options]
       holdfast-server snapshot --help
       holdfast-server events replay-dead-letters --events-spool DIR --events-upstream URL

Serves flagd-format flags over OFREP (POST /ofrep/v1/evaluate/flags) and collects events
(POST /holdfast/v1/events). The flags file is watched; invalid or emptied edits are refused and
logged. GET / lists the endpoints. SIGTERM drains: requests in flight finish, new ones are refused.

Options:
${lines.join('\n')}
`
}

/**
 * A number as an operator types one: decimal digits, with a fraction unless `whole` (`5`, `0.5`,
 * `.5`, `5.`); anything else is NaN. `Number()` alone took `0x10` as 16, `1e3` as 1000, ` 5` as 5
 * and `''` as 0. Every numeric option of the server, `snapshot` and `events replay-dead-letters`
 * is read through it, so one value means the same to all three.
 */
export function readCliNumber(text: string, whole: boolean): number {
  return (whole ? /^\d+$/ : /^(\d+(\.\d*)?|\.\d+)$/).test(text) ? Number(text) : Number.NaN
}

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

/** How `holdfast-server` writes its own log: `--log-format`, `--log-level`. */
export interface LogOptions {
  /** `text`: `[holdfast-server] …` lines; `json`: `{"time","level","msg"}` a line. Default text. */
  format: 'text' | 'json'
  /** The least severe level written. Default info. */
  level: 'error' | 'warn' | 'info'
}

const LOG_CHOICES = { format: ['text', 'json'], level: ['error', 'warn', 'info'] } as const

// --log-format and --log-level, or HOLDFAST_LOG_FORMAT and HOLDFAST_LOG_LEVEL: one of their words.
function logOptions(v: Pick<CliValues, 'log-format' | 'log-level'>, env: NodeJS.ProcessEnv): { ok: true; options: LogOptions } | { ok: false; error: string } {
  const read = <K extends keyof typeof LOG_CHOICES>(key: K, fallback: (typeof LOG_CHOICES)[K][number]) => {
    const flag: string | undefined = key === 'format' ? v['log-format'] : v['log-level']
    const name = flag !== undefined ? `--log-${key}` : `HOLDFAST_LOG_${key.toUpperCase()}`
    const given = flag ?? env[`HOLDFAST_LOG_${key.toUpperCase()}`]
    if (given === undefined) return { value: fallback }
    if ((LOG_CHOICES[key] as readonly string[]).includes(given)) return { value: given as (typeof LOG_CHOICES)[K][number] }
    return { error: `${name} must be ${LOG_CHOICES[key].join(', ').replace(/, (\w+)$/, ' or $1')}, got ${JSON.stringify(given.length > 80 ? `${given.slice(0, 80)}…` : given)}` }
  }
  const format = read('format', 'text')
  if ('error' in format) return { ok: false, error: format.error! }
  const level = read('level', 'info')
  if ('error' in level) return { ok: false, error: level.error! }
  return { ok: true, options: { format: format.value, level: level.value } }
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

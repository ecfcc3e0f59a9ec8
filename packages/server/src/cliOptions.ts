import { parseArgs } from 'node:util'
import { negativeValuesJoined, repeatedOption } from './cliArgs'

// Every command-line option in one table: its parseArgs type, its help line, and how it maps onto
// FlagServerOptions. Adding an option is adding a row (and, if it takes a value, a line in
// `buildServerOptions`, serverOptions.ts), so branches that each add options merge without touching each other.

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

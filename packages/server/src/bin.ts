#!/usr/bin/env node
// The holdfast-server CLI. Rollup keeps the shebang above as the first line of dist/bin.js.
import { parseArgs } from 'node:util'
import { createFlagServer, DEFAULT_HOST, DEFAULT_PORT, type FlagServer } from './flagServer'

const USAGE = `Usage: holdfast-server --flags flags.json [options]

Serves flagd-format flags over OFREP (POST /ofrep/v1/evaluate/flags) and collects events
(POST /holdfast/v1/events). The flags file is watched; invalid edits are refused and logged.

Options:
  --flags FILE         flagd JSON flag definitions (required)
  --port N             port to listen on; 0 picks a free one (default ${DEFAULT_PORT})
  --host HOST          interface to bind (default ${DEFAULT_HOST})
  --events-file FILE   append accepted events here as JSON Lines; dedupe survives restarts
  --events-max-bytes N rotate the events file past N bytes (default: never)
  --events-keep N      rotated events files kept (default 5)
  --events-upstream URL forward accepted events to this events endpoint, through a
                       durable spool (instead of --events-file); HOLDFAST_EVENTS_UPSTREAM_KEY
                       is sent as "Authorization: Bearer KEY"
  --events-spool DIR   the spool of --events-upstream (default .holdfast/events-spool)
  --api-key KEY        require "Authorization: Bearer KEY" or "X-API-Key: KEY"
                       (or set HOLDFAST_API_KEY, which keeps the key out of the process list)
  --cors-origin ORIGIN allow only this origin (default: any origin)
  --demo-controls      enable /demo/outage and /demo/reset-events
  --lenient            warn about flagd schema problems instead of refusing the file
  -h, --help           show this help
`

function fail(message: string): never {
  process.stderr.write(`[holdfast-server] ${message}\n\n${USAGE}`)
  process.exit(2)
}

function readOptions() {
  let parsed
  try {
    parsed = parseArgs({
      options: {
        flags: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        'events-file': { type: 'string' },
        'events-max-bytes': { type: 'string' },
        'events-keep': { type: 'string' },
        'events-upstream': { type: 'string' },
        'events-spool': { type: 'string' },
        'api-key': { type: 'string' },
        'cors-origin': { type: 'string' },
        'demo-controls': { type: 'boolean' },
        lenient: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values
  } catch (error) {
    fail((error as Error).message)
  }
  if (parsed.help) {
    process.stdout.write(USAGE)
    process.exit(0)
  }
  if (!parsed.flags) fail('--flags is required')
  const port = parsed.port === undefined ? DEFAULT_PORT : Number(parsed.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a number from 0 to 65535, got "${parsed.port}"`)
  const count = (name: string, min: number) => {
    const raw = (parsed as Record<string, string | boolean | undefined>)[name]
    if (raw === undefined) return undefined
    const n = Number(raw)
    if (!Number.isSafeInteger(n) || n < min) fail(`--${name} must be a whole number of at least ${min}, got "${raw}"`)
    return n
  }
  const eventsUpstream = parsed['events-upstream']
  if (eventsUpstream !== undefined && !/^https?:\/\/./.test(eventsUpstream)) fail(`--events-upstream must be an http(s) URL, got "${eventsUpstream}"`)
  if (eventsUpstream !== undefined && parsed['events-file'] !== undefined) fail('--events-upstream and --events-file cannot be combined: events are either kept here or forwarded')
  const upstreamKey = process.env.HOLDFAST_EVENTS_UPSTREAM_KEY
  return {
    eventsMaxBytes: count('events-max-bytes', 1),
    eventsKeep: count('events-keep', 1),
    eventsUpstream,
    eventsSpoolDir: parsed['events-spool'],
    eventsUpstreamHeaders: upstreamKey ? { Authorization: `Bearer ${upstreamKey}` } : undefined,
    flags: parsed.flags,
    port,
    host: parsed.host,
    eventsFile: parsed['events-file'],
    apiKey: parsed['api-key'] ?? (process.env.HOLDFAST_API_KEY || undefined),
    corsOrigin: parsed['cors-origin'],
    demoControls: parsed['demo-controls'] ?? false,
    strictValidation: !parsed.lenient,
  }
}

async function main(): Promise<void> {
  const options = readOptions()
  let server: FlagServer
  try {
    server = await createFlagServer(options)
  } catch (error) {
    const message = (error as Error).message
    process.stderr.write(`${message.startsWith('[holdfast-server]') ? '' : '[holdfast-server] '}${message}\n`)
    process.exit(1)
  }
  process.stdout.write(`[holdfast-server] serving ${options.flags} at ${server.url}\n`)

  let stopping = false
  const stop = (signal: string) => {
    // A second Ctrl-C means "now": do not wait for slow connections or writes.
    if (stopping) process.exit(130)
    stopping = true
    process.stdout.write(`[holdfast-server] ${signal}: shutting down\n`)
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
}

void main()

// `npm run demo`: builds the packages, starts an upstream flag service (the reference server on a
// working copy of examples/flags.json), snapshots its values into the React example app's build as
// its fallback (`holdfast-server snapshot`), and starts the relay (`holdfast-server --upstream`)
// that the app talks to (demo outage controls on both, events written to a file that outlives the
// demo). The app learns the relay's URL at runtime; the app's server also carries the kill switch
// control, which edits the working flags file. Ctrl-C stops everything and exits 0.
//
// Also a module: the end-to-end suite calls `startDemo()` in-process.
import { existsSync, realpathSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { buildApp, buildPackages, snapshotValues, stopBuilds } from './demo/build.mjs'
import { createKillSwitch } from './demo/killSwitch.mjs'
import { startStaticServer } from './demo/staticServer.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const HOST = '127.0.0.1'

/**
 * Builds and starts the demo: an upstream flag service (a reference server on a working copy of
 * examples/flags.json, with demo outage controls), the app's build-time fallback made from it by
 * `holdfast-server snapshot` (as a CI step would), and the relay (`holdfast-server --upstream`)
 * that the app talks to, keeping its last known good answers in a data dir. `appPort` and
 * `flagsPort` (the relay's) default to 0 (a free port each); `buildPackages: false` skips the root
 * package build when dist/ is known to be current; `quiet: true` silences the servers' logs;
 * `keepEvents: true` (the CLI's choice; default false) puts the events file in a directory of its
 * own that `close()` leaves in place. Resolves with the URLs, the files and an idempotent
 * `close()` that stops every server and removes the temporary directory.
 */
export async function startDemo({ appPort = 0, flagsPort = 0, buildPackages: rebuild = true, quiet = false, keepEvents = false } = {}) {
  const work = await mkdtemp(join(tmpdir(), 'holdfast-demo-'))
  const cleanups = [() => rm(work, { recursive: true, force: true })]
  const eventsDir = keepEvents ? await mkdtemp(join(tmpdir(), 'holdfast-demo-events-')) : work
  const eventsFile = join(eventsDir, 'events.jsonl')
  // The upstream watches this copy; the kill switch control edits it. examples/flags.json stays as committed.
  const flagsFile = join(work, 'flags.json')
  const fallbackFile = join(work, 'fallback.json')
  await copyFile(join(ROOT, 'examples', 'flags.json'), flagsFile)
  const close = once(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
  })
  try {
    if (rebuild) await buildPackages(ROOT)
    else if (!existsSync(join(ROOT, 'packages', 'server', 'dist', 'index.js'))) {
      throw new Error('the packages are not built (packages/*/dist is missing); run without --no-build, or `npm run build` first')
    }

    // Imported after the build: the servers run from packages/server/dist.
    const { createFlagServer, consoleLogger, silentLogger } = await import('@holdfast/server')
    const logging = quiet ? { logger: silentLogger } : {}
    // Two servers log into one terminal: the upstream's lines say it spoke. It takes no events (the
    // relay stores them in the events file printed below), so its start-up note that events would
    // be kept only in memory and lost is not about the demo's events and is left out.
    const upstreamLogger = quiet
      ? silentLogger
      : Object.fromEntries(
          ['info', 'warn', 'error'].map((level) => [
            level,
            (message) => {
              if (/^\[holdfast-server\] events: no --events-file/.test(message)) return
              consoleLogger[level](message.replace(/^\[holdfast-server\]/, '[holdfast-server upstream]'))
            },
          ]),
        )

    // The upstream flag service (a vendor's OFREP API, in real life).
    const upstream = await createFlagServer({ flags: flagsFile, port: 0, host: HOST, demoControls: true, logger: upstreamLogger })
    cleanups.push(() => upstream.close())

    // The fallback for a first visit with no network, made as a CI step makes it, then built in.
    await snapshotValues(ROOT, { upstream: upstream.url, context: { targetingKey: 'build' }, out: fallbackFile })
    const appDir = join(work, 'app')
    await buildApp(ROOT, appDir, { fallback: JSON.parse(await readFile(fallbackFile, 'utf8')) })

    // The relay: what the browser talks to. It answers from its last known good per user while
    // the upstream is down, and keeps those answers on disk.
    const relay = await createFlagServer({
      upstream: upstream.url,
      // Well under the app's 3 s request timeout: with the upstream hanging, the relay answers from
      // what it holds before the browser gives up on it.
      upstreamTimeoutMs: 1000,
      dataDir: join(work, 'relay-data'),
      port: flagsPort,
      host: HOST,
      eventsFile,
      demoControls: true,
      ...logging,
    })
    cleanups.push(() => relay.close())

    const killSwitch = createKillSwitch({ flagsFile, confirmUrl: relay.url })
    const routes = {
      '/api/kill-switch': async ({ method, body }) => {
        if (method === 'GET') return { body: await killSwitch.get() }
        if (typeof body?.on !== 'boolean') return { status: 400, body: { error: 'expected {"on": true|false}' } }
        return { body: await killSwitch.set(body.on) }
      },
      // The upstream is not the browser's to reach; the page breaks it through the app's server.
      '/api/upstream/outage': ({ method, body }) => forward(`${upstream.url}/demo/outage`, method, body),
      '/api/relay/status': () => forward(`${relay.url}/holdfast/v1/status`, 'GET'),
    }
    const app = await startStaticServer({ root: appDir, port: appPort, host: HOST, config: { flagsUrl: relay.url, relay: true }, routes })
    cleanups.push(() => app.close())

    return { appUrl: app.url, flagsUrl: relay.url, upstreamUrl: upstream.url, eventsFile, flagsFile, fallbackFile, flagServer: relay, upstream, close }
  } catch (error) {
    await close()
    // Nothing was received: the kept events directory would only be litter.
    if (eventsDir !== work) await rm(eventsDir, { recursive: true, force: true })
    throw error
  }
}

/** Passes a demo control request on to one of the demo's servers; answers what it answered. */
async function forward(url, method, body) {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  })
  return { status: response.status, body: await response.json().catch(() => null) }
}

function once(fn) {
  let result
  return () => (result ??= fn())
}

const USAGE = `Usage: npm run demo -- [options]

Builds Holdfast and the React example app, then serves:
  the app          http://127.0.0.1:5173   (--port N,       env PORT)
  the flag server  http://127.0.0.1:8787   (--flags-port N, env FLAGS_PORT): a relay
                   (holdfast-server --upstream) in front of an upstream flag service on a free port
Port 0 picks a free one. Ctrl-C stops everything.

Options:
  --port N, --app-port N   port of the app (default 5173)
  --flags-port N           port of the flag server (default 8787)
  --no-build               skip the package build (dist/ must be current); the app is always built
  -h, --help               show this help
`

function readCliOptions(argv, env) {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      'app-port': { type: 'string' },
      'flags-port': { type: 'string' },
      'no-build': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  })
  const port = (name, value, fallback) => {
    if (value === undefined || value === '') return fallback
    const n = Number(value)
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a port number from 0 to 65535, got "${value}"`)
    return n
  }
  return {
    help: values.help === true,
    appPort: port('--port', values.port ?? values['app-port'] ?? env.PORT, 5173),
    flagsPort: port('--flags-port', values['flags-port'] ?? env.FLAGS_PORT, 8787),
    buildPackages: values['no-build'] !== true,
  }
}

async function main() {
  let options
  try {
    options = readCliOptions(process.argv.slice(2), process.env)
  } catch (error) {
    process.stderr.write(`demo: ${error.message}\n\n${USAGE}`)
    process.exit(2)
  }
  if (options.help) {
    process.stdout.write(USAGE)
    return
  }

  // Signals are taken from the start: one that comes while it builds stops the build steps (a
  // SIGINT to npm alone left rollup and esbuild running on, orphaned, with the temporary
  // directories behind), and one that comes once it runs closes every server.
  let demo
  let stoppedAt
  let stopSignal
  const finish = async (signal) => {
    console.log(`\nStopping the demo (${signal})…`)
    await demo.close()
    console.log(`The events the flag server received are in ${demo.eventsFile}`)
    process.exit(0)
  }
  const stop = async (signal) => {
    if (stoppedAt !== undefined) {
      // One Ctrl-C can arrive twice: from the terminal (to the whole process group) and forwarded
      // by npm. Only a second press, later on, means "stop waiting".
      if (Date.now() - stoppedAt < 1000) return
      console.error(`demo: ${signal} again, exiting without waiting`)
      stopBuilds()
      process.exit(1)
    }
    stoppedAt = Date.now()
    stopSignal = signal
    if (demo) return finish(signal)
    // Still starting: the build steps end now; startDemo then fails and removes what it made (an
    // app bundle being written in this process finishes first, and the demo is closed after it).
    stopBuilds()
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))
  process.on('SIGHUP', () => void stop('SIGHUP'))

  // `npm run demo` runs `sh -c 'exec node scripts/demo.mjs'`: the shell becomes this process, so a
  // signal sent to npm alone (a supervisor, a test harness) is forwarded to us. Without the `exec`,
  // dash waiting on us kept a forwarded SIGINT until we ended (it takes it that we got the same
  // one from the terminal) and died of a SIGTERM without passing it on. Should npm itself be killed
  // (SIGKILL forwards nothing), being re-parented is the sign: stop as if signalled.
  const parent = process.ppid
  const watchdog = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(watchdog)
    void stop('parent exited')
  }, 1000).unref()

  console.log(options.buildPackages ? 'Building Holdfast and the demo app…' : 'Bundling the demo app (package build skipped: --no-build)…')
  try {
    demo = await startDemo({ ...options, keepEvents: true })
  } catch (error) {
    if (stoppedAt !== undefined) {
      console.log(`\nThe demo stopped (${stopSignal}) before it started.`)
      process.exit(0)
    }
    const reason =
      error?.code === 'EADDRINUSE'
        ? `port ${error.port} is taken; choose others with --port / --flags-port (0 picks a free one)`
        : (error?.message ?? String(error))
    console.error(`demo: could not start: ${reason}`)
    process.exit(1)
  }
  if (stoppedAt !== undefined) return finish(stopSignal)

  console.log(`
  Holdfast demo
    app          ${demo.appUrl}
    flag server  ${demo.flagsUrl}   the relay the app talks to (outage switch: POST ${demo.flagsUrl}/demo/outage)
    upstream     ${demo.upstreamUrl}   the flag service behind the relay (outage switch: POST ${demo.upstreamUrl}/demo/outage)
    events file  ${demo.eventsFile}   (kept after the demo stops)

  Open the app, then use its outage switch. Ctrl-C to stop.
`)
}

// Run the CLI only when started as `node scripts/demo.mjs`, not when imported. Node reports a
// module's real path in import.meta.url, so compare against the real path of argv[1].
function isEntryPoint() {
  if (!process.argv[1]) return false
  try {
    return import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href
  } catch {
    return false
  }
}
if (isEntryPoint()) await main()

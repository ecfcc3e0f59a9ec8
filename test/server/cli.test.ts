// The holdfast-server command, run as a user runs it, serving the demo's own flag file.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { flagsByKey, post, tempDir } from './helpers'

const root = fileURLToPath(new URL('../..', import.meta.url))
const SOURCE_BIN = ['--import', 'tsx', 'packages/server/src/bin.ts']
const BUILT_BIN = join(root, 'packages/server/dist/bin.js')
const children: ChildProcess[] = []

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

interface Run {
  child: ChildProcess
  output: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  )
  return { child, output: () => output, exited }
}

/**
 * Waits for the "serving ... at URL" line and returns the URL. Event-driven (it looks again on
 * each chunk of output, not on a timer), and its limit stays well inside the tests' own: starting
 * `node --import tsx` on a busy 2-core machine can take several seconds.
 */
function urlOf(server: Run, timeoutMs = START_LIMIT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer)
      server.child.stdout!.off('data', check)
      server.child.off('exit', exited)
    }
    const check = () => {
      const match = server.output().match(/serving .* at (http:\/\/\S+)/)
      if (match) {
        done()
        resolve(match[1])
      }
    }
    const exited = () => {
      done()
      reject(new Error(`exited early:\n${server.output()}`))
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`no URL printed within ${timeoutMs} ms:\n${server.output()}`))
    }, timeoutMs)
    server.child.stdout!.on('data', check)
    server.child.once('exit', exited)
    check()
  })
}

/** How long a server may take to start: 30 s. Every test's own limit is above it (TEST_LIMIT_MS). */
const START_LIMIT_MS = 30_000
/** Each test may start a few servers one after another. */
const TEST_LIMIT_MS = 90_000

describe('holdfast-server CLI', { timeout: TEST_LIMIT_MS }, () => {
  it('serves the demo flags, prints its URL and stops cleanly on SIGTERM', async () => {
    const server = run([...SOURCE_BIN, '--flags', 'examples/flags.json', '--port', '0'])
    const url = await urlOf(server)
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect((await fetch(`${url}/healthz`)).status).toBe(200)

    // The demo's flags behave as the demo script tells the audience.
    const evaluate = async (context: Record<string, unknown>) =>
      flagsByKey(await post(`${url}/ofrep/v1/evaluate/flags`, { context }))
    const anon = await evaluate({ targetingKey: 'visitor-1' })
    expect(anon['checkout-kill-switch']).toMatchObject({ value: false })
    expect(anon['banner-config'].value).toEqual({ text: expect.any(String), color: expect.any(String) })
    expect(anon['beta-dashboard']).toMatchObject({ value: false })
    expect(typeof anon['checkout-button-text'].value).toBe('string')
    expect(typeof anon['free-shipping-threshold'].value).toBe('number')
    expect((await evaluate({ targetingKey: 'v2', email: 'dana@example.com' }))['beta-dashboard']).toMatchObject({ value: true })
    expect((await evaluate({ targetingKey: 'v3', plan: 'pro' }))['beta-dashboard']).toMatchObject({ value: true })
    const rollout = await Promise.all(Array.from({ length: 60 }, async (_, i) => (await evaluate({ targetingKey: `visitor-${i}` }))['new-checkout'].value))
    expect(new Set(rollout)).toEqual(new Set([true, false]))

    server.child.kill('SIGTERM')
    expect(await server.exited).toEqual({ code: 0, signal: null })
    await expect(fetch(`${url}/healthz`)).rejects.toThrow()
  })

  it('passes --api-key, --events-file, --cors-origin and --demo-controls through', async () => {
    const events = join(await tempDir(), 'events.jsonl')
    const server = run([
      ...SOURCE_BIN,
      '--flags', 'examples/flags.json', '--port', '0', '--host', '127.0.0.1',
      '--api-key', 'cli-key', '--events-file', events, '--cors-origin', 'https://shop.example', '--demo-controls',
    ])
    const url = await urlOf(server)
    expect((await post(`${url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' } })).status).toBe(401)
    const ok = await post(`${url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' } }, { Authorization: 'Bearer cli-key' })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://shop.example')
    const event = { id: 'cli-1', type: 'custom', name: 'hello', time: Date.now() }
    expect((await post(`${url}/holdfast/v1/events`, { events: [event] }, { 'X-API-Key': 'cli-key' })).status).toBe(202)
    expect(JSON.parse(await readFile(events, 'utf8'))).toEqual(event)
    expect((await fetch(`${url}/demo/outage`, { headers: { 'X-API-Key': 'cli-key' } })).status).toBe(200)
    server.child.kill('SIGINT')
    expect((await server.exited).code).toBe(0)
  })

  it('reads the API key from HOLDFAST_API_KEY', async () => {
    const server = run([...SOURCE_BIN, '--flags', 'examples/flags.json', '--port', '0'], { HOLDFAST_API_KEY: 'env-key' })
    const url = await urlOf(server)
    expect((await post(`${url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' } })).status).toBe(401)
    expect((await post(`${url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' } }, { 'X-API-Key': 'env-key' })).status).toBe(200)
  })

  it('exits 2 with usage on bad arguments and 1 on a broken flags file', async () => {
    const noFlags = run([...SOURCE_BIN, '--port', '0'])
    expect((await noFlags.exited).code).toBe(2)
    expect(noFlags.output()).toMatch(/--flags is required[\s\S]*Usage: holdfast-server/)
    const badPort = run([...SOURCE_BIN, '--flags', 'examples/flags.json', '--port', 'eighty'])
    expect((await badPort.exited).code).toBe(2)
    const unknown = run([...SOURCE_BIN, '--flags', 'examples/flags.json', '--bogus'])
    expect((await unknown.exited).code).toBe(2)
    // Not the flagd format: flags at the top level (the in-memory provider's format).
    const brokenFile = join(await tempDir(), 'test-flags.json')
    await writeFile(brokenFile, JSON.stringify({ 'boolean-flag': { variants: { on: true }, defaultVariant: 'on' } }))
    const broken = run([...SOURCE_BIN, '--flags', brokenFile, '--port', '0'])
    expect((await broken.exited).code).toBe(1)
    expect(broken.output()).toMatch(/\[holdfast-server\] .*test-flags\.json is invalid: expected an object with a "flags" object/)
  })

  it('refuses to start with an empty API key, from the flag or the environment (fail closed)', async () => {
    const flag = run([...SOURCE_BIN, '--flags', 'examples/flags.json', '--port', '0', '--api-key', ''])
    expect((await flag.exited).code).toBe(2)
    expect(flag.output()).toMatch(/\[holdfast-server\] --api-key is empty: .*refusing to start open/)
    const env = run([...SOURCE_BIN, '--flags', 'examples/flags.json', '--port', '0'], { HOLDFAST_API_KEY: '' })
    expect((await env.exited).code).toBe(2)
    expect(env.output()).toMatch(/HOLDFAST_API_KEY is empty/)
    expect(env.output()).not.toMatch(/serving/)
  })

  it('refuses a --cors-origin that is not an origin (exit 2), naming the origin meant', async () => {
    const slash = run([...SOURCE_BIN, '--flags', 'examples/flags.json', '--port', '0', '--cors-origin', 'https://shop.example/'])
    expect((await slash.exited).code).toBe(2)
    expect(slash.output()).toMatch(/--cors-origin must be an origin .*"https:\/\/shop\.example"/)
    expect(slash.output()).not.toMatch(/serving/)
  })

  it('refuses a single-valued option given twice, and a blank HOLDFAST_REDIS_URL or HOLDFAST_EVENTS_UPSTREAM_KEY (fail closed)', async () => {
    // parseArgs keeps the last of a repeated option: `--flags a.json --flags b.json` served b.json
    // and `--api-key A --api-key B` let only B in, with no word said. An empty
    // HOLDFAST_REDIS_URL (a secret that did not resolve) started a relay that shares nothing, and
    // an empty HOLDFAST_EVENTS_UPSTREAM_KEY forwarded events without the key.
    const refused = [
      { args: ['--flags', 'examples/flags.json', '--flags', 'examples/other.json', '--port', '0'], message: /--flags is given 2 times/ },
      { args: ['--flags', 'examples/flags.json', '--api-key', 'A', '--api-key', 'B', '--port', '0'], message: /--api-key is given 2 times/ },
      { args: ['--flags', 'examples/flags.json', '--port=0', '--port', '1'], message: /--port is given 2 times/ },
      { args: ['--flags-url', 'http://127.0.0.1:1/flags.json', '--port', '0'], env: { HOLDFAST_REDIS_URL: '' }, message: /HOLDFAST_REDIS_URL is empty/ },
      { args: ['--flags', 'examples/flags.json', '--events-upstream', 'http://127.0.0.1:1/events', '--port', '0'], env: { HOLDFAST_EVENTS_UPSTREAM_KEY: '' }, message: /HOLDFAST_EVENTS_UPSTREAM_KEY is empty/ },
      { args: ['--flags', 'examples/flags.json', '--events-upstream', 'http://127.0.0.1:1/events', '--port', '0'], env: { HOLDFAST_EVENTS_UPSTREAM_KEY: '  ' }, message: /HOLDFAST_EVENTS_UPSTREAM_KEY is empty/ },
    ]
    const runs = refused.map(({ args, env }) => run([...SOURCE_BIN, ...args], env))
    for (const [i, { message }] of refused.entries()) {
      expect((await runs[i].exited).code, refused[i].args.join(' ')).toBe(2)
      expect(runs[i].output()).toMatch(message)
      expect(runs[i].output()).not.toMatch(/serving/)
    }
    // A repeatable option stays repeatable.
    const forwarded = run([...SOURCE_BIN, '--upstream', 'http://127.0.0.1:1', '--forward-header', 'Authorization', '--forward-header', 'X-Tenant', '--port', '0'])
    expect(await urlOf(forwarded)).toMatch(/^http:/)
    // SIGTERM the moment the URL is printed drains and exits 0: the signal handlers are installed
    // before the line (before, a signal right after it could land first and kill the process).
    forwarded.child.kill('SIGTERM')
    expect((await forwarded.exited).code).toBe(0)
  })

  it('on SIGTERM finishes the request in flight, refuses new connections and exits 0', async () => {
    const server = run([...SOURCE_BIN, '--flags', 'examples/flags.json', '--port', '0'])
    const url = await urlOf(server)
    const { hostname, port } = new URL(url)
    const socket = connect(Number(port), hostname)
    let received = ''
    socket.on('data', (chunk) => (received += chunk))
    socket.on('error', () => {})
    const body = JSON.stringify({ context: { targetingKey: 'u' } })
    // Expect: 100-continue makes the server say when it has the request: it is then in flight.
    socket.write(`POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`)
    await new Promise<void>((resolve) => {
      const seen = () => received.includes('100 Continue') && (socket.off('data', seen), resolve())
      socket.on('data', seen)
    })
    server.child.kill('SIGTERM')
    await new Promise<void>((resolve) => {
      const seen = () => server.output().includes('draining') && (server.child.stdout!.off('data', seen), resolve())
      server.child.stdout!.on('data', seen)
      seen()
    })
    await expect(fetch(`${url}/healthz`)).rejects.toThrow()
    socket.write(body)
    expect(await server.exited).toEqual({ code: 0, signal: null })
    expect(received).toMatch(/HTTP\/1\.1 200 OK[\s\S]*"checkout-kill-switch"/)
  })

  it.skipIf(!existsSync(BUILT_BIN))('the built bin keeps its shebang and runs (after npm run build)', async () => {
    expect((await readFile(BUILT_BIN, 'utf8')).split('\n')[0]).toBe('#!/usr/bin/env node')
    const server = run([BUILT_BIN, '--flags', 'examples/flags.json', '--port', '0'])
    const url = await urlOf(server)
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    server.child.kill('SIGTERM')
    expect((await server.exited).code).toBe(0)
  })

  it('--version prints the installed package version and exits 0, from the source and the built bin', async () => {
    const { version } = JSON.parse(await readFile(join(root, 'packages/server/package.json'), 'utf8')) as { version: string }
    for (const args of [[...SOURCE_BIN, '--version'], ...(existsSync(BUILT_BIN) ? [[BUILT_BIN, '--version']] : [])]) {
      const cli = run(args)
      expect(await cli.exited).toEqual({ code: 0, signal: null })
      expect(cli.output()).toBe(`${version}\n`)
    }
  })
})

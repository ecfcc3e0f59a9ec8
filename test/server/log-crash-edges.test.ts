// The crash line of the holdfast-server command (log-crash.test.ts) at its edges, as an operator's
// log shipper and supervisor see them: a thrown value that cannot be printed the usual way, a
// second crash while the first one's line waits for a stalled reader, a crash in the middle of a
// SIGTERM drain, a rejection taken late. Each ends within a bound, exit 1, one crash line. And the
// handler is the command's alone: a program that imports @holdfast/server and crashes gets Node's
// own behaviour. Crashes are injected by fixtures/crashHook.mjs, preloaded into the built command.
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const hook = fileURLToPath(new URL('./fixtures/crashHook.mjs', import.meta.url))
const kills: Array<() => void> = []
afterEach(() => kills.splice(0).forEach((kill) => kill()))

/** Runs `node args` in the repo; resolves with its exit and output, or says it hung past `ms`. */
function run(args: string[], env: NodeJS.ProcessEnv, during?: (child: ReturnType<typeof spawn>, out: () => string) => Promise<void>, ms = 15_000) {
  const clean: NodeJS.ProcessEnv = { ...process.env, ...env }
  for (const name of Object.keys(clean)) if (name.startsWith('HOLDFAST_') && !(name in env)) delete clean[name]
  const child = spawn(process.execPath, args, { cwd: root, env: clean, stdio: ['ignore', 'pipe', 'pipe'] })
  kills.push(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'))
  let out = ''
  let err = ''
  child.stdout!.on('data', (chunk) => (out += chunk))
  child.stderr!.on('data', (chunk) => (err += chunk))
  const started = Date.now()
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  return (async () => {
    if (during) await during(child, () => out)
    const hung = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), ms).unref())
    const end = await Promise.race([exited, hung])
    await new Promise((r) => setTimeout(r, 50))
    return { end, ms: Date.now() - started, out, err, errLines: err.split('\n').filter((l) => l !== '') }
  })()
}

const BIN = join(root, 'packages/server/dist/bin.js')
async function serving(out: () => string): Promise<string> {
  for (const end = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 20))) {
    const match = out().match(/serving .* at (http:\/\/[^\s"]+)/)
    if (match) return match[1]!
    if (Date.now() > end) throw new Error(`not started:\n${out()}`)
  }
}

/** The command on examples/flags.json, crashed by the hook the way `how` says once it serves. */
function crashed(how: string, format: 'text' | 'json' = 'json') {
  return run(['--import', hook, BIN, '--flags', 'examples/flags.json', '--port', '0', '--log-format', format], { CRASH: how, FILLER: '10' }, async (child, out) => {
    await serving(out)
    child.kill('SIGUSR2')
  })
}

const crashLines = (lines: string[]) => lines.filter((l) => /crashed \(/.test(l))

describe('the crash line at its edges', () => {
  it('an object thrown that String() cannot print (no prototype): a crash line saying what it was, exit 1', async () => {
    const { end, errLines } = await crashed('null-prototype')
    expect(end).toEqual({ code: 1, signal: null })
    const lines = crashLines(errLines).map((l) => JSON.parse(l) as Record<string, string>)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ level: 'error', msg: expect.stringMatching(/^crashed \(uncaught exception\): .*injected: 'crash'/) })
  }, 30_000)

  it('an Error whose stack cannot be read: a crash line with its name and message, exit 1', async () => {
    const { end, errLines } = await crashed('stack-throws', 'text')
    expect(end).toEqual({ code: 1, signal: null })
    expect(crashLines(errLines)).toEqual([expect.stringMatching(/^\[holdfast-server\] crashed \(uncaught exception\): Error: injected crash$/)])
  }, 30_000)

  it('a second exception while the first one is being said: one crash line, exit 1, no loop', async () => {
    const { end, errLines, ms } = await crashed('twice')
    expect(end).toEqual({ code: 1, signal: null })
    expect(crashLines(errLines)).toHaveLength(1)
    expect(JSON.parse(crashLines(errLines)[0]!).msg).toMatch(/^crashed \(uncaught exception\): Error: injected crash\n/)
    expect(ms).toBeLessThan(10_000)
  }, 30_000)

  it('a rejection taken late (unhandledRejection, then rejectionHandled): one crash line, exit 1, as Node itself would exit', async () => {
    const { end, errLines } = await crashed('late-handled')
    expect(end).toEqual({ code: 1, signal: null })
    expect(crashLines(errLines)).toHaveLength(1)
  }, 30_000)

  it('a crash in the middle of a SIGTERM drain (a request still in flight): exit 1 within the flush bound, not 0, and the crash line is the last', async () => {
    const { end, errLines, out, ms } = await run(['--import', hook, BIN, '--flags', 'examples/flags.json', '--port', '0', '--log-format', 'json'], { CRASH: 'throw', FILLER: '10' }, async (child, output) => {
      const url = new URL(await serving(output))
      // A request whose body never comes: the drain waits for it (up to 10 s).
      const socket = connect(Number(url.port), url.hostname)
      kills.push(() => socket.destroy())
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
      socket.write('POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{')
      await new Promise((r) => setTimeout(r, 100))
      child.kill('SIGTERM')
      for (const end = Date.now() + 5000; !/draining/.test(output()); await new Promise((r) => setTimeout(r, 20))) if (Date.now() > end) throw new Error(output())
      child.kill('SIGUSR2')
    })
    expect(end).toEqual({ code: 1, signal: null })
    expect(ms).toBeLessThan(9000)
    expect(crashLines(errLines)).toHaveLength(1)
    expect(errLines.at(-1)).toMatch(/"msg":"crashed \(uncaught exception\)/)
    expect(out).not.toMatch(/"msg":"stopped"/)
  }, 30_000)
})

// Node's --unhandled-rejections=warn, none or warn-with-error-code (on its command line or in
// NODE_OPTIONS) is the operator saying a rejection nothing took is not to end the process. The
// crash handler took those rejections whatever the mode, and the relay exited 1.
describe("the operator's --unhandled-rejections", () => {
  /** The command (with `nodeArgs` before it), a rejection injected once it serves; then a request, then SIGTERM. */
  function rejected(nodeArgs: string[], env: NodeJS.ProcessEnv) {
    let answered: number | string = 'no request'
    const result = run([...nodeArgs, '--import', hook, BIN, '--flags', 'examples/flags.json', '--port', '0', '--log-format', 'json'], { CRASH: 'reject', CRASH_MARK: '1', FILLER: '10', ...env }, async (child, out) => {
      const url = await serving(out)
      child.kill('SIGUSR2')
      // Until Node has dealt with the rejection (the hook's mark), or the process is gone.
      let err = ''
      const marked = new Promise<void>((resolve) => {
        child.stderr!.on('data', (chunk) => /"injected":"rejected"/.test((err += chunk)) && resolve())
        child.once('exit', () => resolve())
      })
      await marked
      answered = await fetch(`${url}/healthz`).then((r) => r.status, (e: Error) => `no answer: ${e.message}`)
      if (child.exitCode === null) child.kill('SIGTERM')
    })
    return result.then((r) => ({ ...r, answered }))
  }

  for (const [how, nodeArgs, env] of [
    ['NODE_OPTIONS=--unhandled-rejections=warn', [], { NODE_OPTIONS: '--unhandled-rejections=warn' }],
    ['node --unhandled-rejections=none', ['--unhandled-rejections=none'], {}],
  ] as const) {
    it(`${how}: the rejection is left to Node; the relay keeps serving and drains to exit 0`, async () => {
      const { end, errLines, err, answered } = await rejected([...nodeArgs], env)
      expect(answered).toBe(200)
      expect(crashLines(errLines)).toEqual([])
      expect(end).toEqual({ code: 0, signal: null })
      // Node's own warning (warn), or nothing (none): what the operator asked for.
      if (how.includes('warn')) expect(err).toMatch(/Error: injected crash/)
    }, 30_000)
  }

  it('NODE_OPTIONS=--unhandled-rejections=warn-with-error-code: it keeps serving; the drain then exits 1, the code Node was asked to set', async () => {
    const { end, errLines, answered } = await rejected([], { NODE_OPTIONS: '--unhandled-rejections=warn-with-error-code' })
    expect(answered).toBe(200)
    expect(crashLines(errLines)).toEqual([])
    expect(end).toEqual({ code: 1, signal: null })
  }, 30_000)

  it('without the option (or with throw or strict): the crash line and exit 1, as before', async () => {
    for (const env of [{}, { NODE_OPTIONS: '--unhandled-rejections=throw' }, { NODE_OPTIONS: '--unhandled-rejections=strict' }]) {
      const { end, errLines } = await rejected([], env)
      expect(end).toEqual({ code: 1, signal: null })
      expect(crashLines(errLines)).toHaveLength(1)
    }
  }, 60_000)
})

describe('a program that imports @holdfast/server', () => {
  for (const kind of ['module', 'commonjs'] as const) {
    it(`(${kind}) and crashes gets Node's own behaviour: no handler of ours, Node's report, exit 1`, async () => {
      const script =
        kind === 'module'
          ? `import { createFlagServer } from '@holdfast/server'; const s = await createFlagServer({ flags: 'examples/flags.json', port: 0 }); console.log('listeners', process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')); setTimeout(() => { throw new Error('host crash') }, 10)`
          : `const { createFlagServer } = require('@holdfast/server'); createFlagServer({ flags: 'examples/flags.json', port: 0 }).then(() => { console.log('listeners', process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')); setTimeout(() => { throw new Error('host crash') }, 10) })`
      const { end, out, err } = await run([kind === 'module' ? '--input-type=module' : '--input-type=commonjs', '-e', script], {})
      expect(out).toMatch(/^listeners 0 0$/m)
      expect(end).toEqual({ code: 1, signal: null })
      expect(err).toMatch(/Error: host crash\n {4}at /)
      expect(err).toMatch(/^Node\.js v\d+/m)
      expect(err).not.toMatch(/crashed \(/)
    }, 30_000)
  }
})

describe('a crash after the drain', () => {
  // The drain's exit and the crash's both wait for the reader, and either could end the process
  // first: a race, so the case is run six times at once (on the previous code about one run in
  // seven exited 0).
  async function once() {
    const env: NodeJS.ProcessEnv = { ...process.env, CRASH: 'throw', FILLER: '500000', CRASH_AT_SIGTERM: '1' }
    for (const name of Object.keys(env)) if (name.startsWith('HOLDFAST_')) delete env[name]
    const child = spawn(process.execPath, ['--import', hook, BIN, '--flags', 'examples/flags.json', '--port', '0', '--log-format', 'json'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    kills.push(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    let out = ''
    child.stdout!.on('data', (chunk) => (out += chunk))
    await serving(() => out)
    // stderr is not read for a second: the filler waits in the process, and the drain's exit with it.
    child.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 1000))
    let err = ''
    child.stderr!.on('data', (chunk) => (err += chunk))
    const code = await exited
    return { code, stopped: /"msg":"stopped"/.test(out), crashLines: crashLines(err.split('\n')).length }
  }

  it("a crash after 'stopped', while the last lines wait for a stalled reader: exit 1, not the drain's 0", async () => {
    const runs = await Promise.all(Array.from({ length: 6 }, once))
    expect(runs).toEqual(Array.from({ length: 6 }, () => ({ code: 1, stopped: true, crashLines: 1 })))
  }, 60_000)
})

// A Node host that embeds the relay, closes it and expects its process to exit. With --redis to a
// Redis that never answers, the relay lets silent connections go and replaces them; after close()
// nothing of it may keep the event loop alive. Before, a replacement still connecting when the
// relay closed (its SYN unanswered: a SIGSTOPped Redis whose listen queue is full) lived on to its
// connect timeout (2 s): the host's process exited ~1.5 s late. The relay runs in a child process;
// Redis is a real redis-server.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, vi } from 'vitest'
import { startTcpProxy } from '../support/tcpProxy'
import { useRedisFleet } from './redis-fleet'
import { booleanFlags, startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 })

const { cleanups, redisServer } = useRedisFleet()
const root = fileURLToPath(new URL('../..', import.meta.url))
// What a process with nothing left to do takes to exit, with room for a loaded machine.
const EXIT_BOUND_MS = 500

/** Starts a relay (default Redis options) in a child process, lets it run `runMs`, closes it; how long the process took to exit after close() resolved. */
async function exitAfterClose(redisUrl: string, runMs: number): Promise<number> {
  const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
  const script = `
    const { createFlagServer } = await import('./packages/server/src/index.ts')
    const server = await createFlagServer({ flagsUrl: ${JSON.stringify(`${upstream.url}/flags.json`)}, pollIntervalSeconds: 0.2, redis: ${JSON.stringify(redisUrl)}, port: 0, maxEventLoopDelayMs: 0, logger: { info() {}, warn() {}, error() {} } })
    await new Promise((resolve) => setTimeout(resolve, ${runMs}))
    await server.close()
    process.stdout.write('closed\\n')
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let output = ''
  let closedAt: number | undefined
  child.stderr!.on('data', (chunk) => (output += chunk))
  child.stdout!.on('data', (chunk) => {
    output += chunk
    if (closedAt === undefined && output.includes('closed\n')) closedAt = performance.now()
  })
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  const exitedAt = performance.now()
  expect({ code, closed: closedAt !== undefined }, output).toEqual({ code: 0, closed: true })
  return exitedAt - closedAt!
}

describe('closing a relay whose Redis never answers: the host process exits at once', () => {
  // Pinned, not a defect found: the connections let go were connected, and destroyed.
  it('a proxy that swallows everything: closed after a connection was let go and replaced', async () => {
    const redis = await redisServer()
    const proxy = await startTcpProxy(redis.port)
    cleanups.push(() => proxy.close())
    proxy.blackHole()
    // The handshake bound is 2 s (four 500 ms command timeouts): closed once a connection was replaced.
    expect(await exitAfterClose(proxy.url, 2400)).toBeLessThan(EXIT_BOUND_MS)
  })

  it('every connection refused (Redis restarting): closed while a reconnect waits', async () => {
    const redis = await redisServer()
    const proxy = await startTcpProxy(redis.port)
    cleanups.push(() => proxy.close())
    proxy.cut()
    // Refused at once, again and again: by then each connection waits 2 s (reconnectMaxMs) between tries.
    expect(await exitAfterClose(proxy.url, 6000)).toBeLessThan(EXIT_BOUND_MS)
  })

  it('a SIGSTOPped Redis whose listen queue is full: a replacement still connecting when closed', async () => {
    const redis = await redisServer()
    await redis.stop()
    await redis.start(['--tcp-backlog', '1'])
    redis.pause()
    cleanups.push(() => redis.resume())
    // The relay's own two connections fill the queue; the replacements' SYNs go unanswered.
    expect(await exitAfterClose(redis.url, 2600)).toBeLessThan(EXIT_BOUND_MS)
  })
})

// A real redis-server for one test: started on a free 127.0.0.1 port with no persistence, and
// stopped after. Tests use it to kill, pause (SIGSTOP: a Redis that accepts connections but never
// answers), flush and restart the store under running relays.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, connect } from 'node:net'
import type { AddressInfo } from 'node:net'

export interface RedisServer {
  /** `redis://127.0.0.1:PORT` */
  url: string
  port: number
  /** Stops it (SIGTERM, or SIGKILL when `kill9`); resolves when the process has exited. */
  stop(options?: { kill9?: boolean }): Promise<void>
  /** Starts it again on the same port, empty (it keeps nothing on disk) unless `args` say otherwise (`--dir D --dbfilename F`: load an old dump). */
  start(args?: string[]): Promise<void>
  /** SIGSTOP: connections stay open but nothing is answered, like a Redis stuck in a long command. */
  pause(): void
  /** SIGCONT after {@link pause}. */
  resume(): void
  /** Sends one command with a fresh connection (RESP over a raw socket) and returns the raw reply. */
  command(...args: string[]): Promise<string>
}

const running = new Set<ChildProcess>()
// A test process that dies must not leave redis-servers behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })
}

function spawnRedis(port: number, args: string[] = []): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own working directory: a replica syncing from disk writes dump.rdb there, and in the
      // repo's directory the next redis-server started there loaded it (another test's keys).
      cwd: mkdtempSync(join(tmpdir(), 'holdfast-redis-')),
    })
    running.add(child)
    let output = ''
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('exit', (code) => {
      running.delete(child)
      reject(new Error(`redis-server on ${port} exited (${code}) before it was ready: ${output}`))
    })
    child.once('error', reject)
    // Ready = it answers PING. Generous: the machine may be loaded.
    const started = Date.now()
    const probe = () => {
      sendCommand(port, ['PING']).then(
        (reply) => (reply.startsWith('+PONG') ? resolve(child) : retry()),
        () => retry(),
      )
    }
    const retry = () => {
      if (child.exitCode !== null) return
      if (Date.now() - started > 15_000) {
        child.kill('SIGKILL')
        reject(new Error(`redis-server on ${port} did not answer PING within 15 s: ${output}`))
        return
      }
      setTimeout(probe, 25)
    }
    probe()
  })
}

function sendCommand(port: number, args: string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let reply = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no reply from 127.0.0.1:${port} within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.on('data', (chunk) => {
      reply += chunk.toString()
      // Enough for the simple replies tests use (+OK, :1, $n\r\n...\r\n, -ERR).
      if (/\r\n$/.test(reply) && !/^\$\d+\r\n$/.test(reply)) {
        clearTimeout(timer)
        socket.end()
        resolve(reply)
      }
    })
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`)
  })
}

/** Starts a redis-server on a free port; call `stop()` when done (an `afterEach` is the usual place). */
export async function startRedisServer(): Promise<RedisServer> {
  let lastError: unknown
  // Another process can take the probed port before redis binds it; try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    try {
      let child = await spawnRedis(port)
      const exited = (c: ChildProcess) =>
        c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r()))
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        async stop(options) {
          if (child.exitCode !== null || child.signalCode !== null) return
          child.kill('SIGCONT')
          child.kill(options?.kill9 ? 'SIGKILL' : 'SIGTERM')
          await exited(child)
          running.delete(child)
        },
        async start(args) {
          if (child.exitCode === null && child.signalCode === null) return
          child = await spawnRedis(port, args)
        },
        pause: () => void child.kill('SIGSTOP'),
        resume: () => void child.kill('SIGCONT'),
        command: (...args) => sendCommand(port, args),
      }
    } catch (error) {
      lastError = error
    }
  }
  throw lastError
}

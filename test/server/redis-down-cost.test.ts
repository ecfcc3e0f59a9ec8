// A relay in a long Redis outage retries its two connections (commands and the subscription) every
// few seconds, for hours. Each attempt makes a fresh node-redis client; what one costs is paid at
// every attempt, by a process that is serving flags meanwhile. Against a real port with nothing
// listening on 127.0.0.1 (a Redis that is down: each connect refused), the retries sped up
// (reconnectMaxMs: 4) and counted as the sockets node:net opens (diagnostics_channel).
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { createServer, type AddressInfo } from 'node:net'
import { expect, it } from 'vitest'
import { createRedisStore } from '../../packages/server/src/store/redisStore'

it('each reconnection attempt while Redis is down costs about half a millisecond of CPU, not the 25 ms of a rebuilt client class', async () => {
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise((resolve) => closed.close(resolve))

  let sockets = 0
  const count = () => void sockets++
  subscribe('net.client.socket', count)
  const store = createRedisStore({ url: `redis://127.0.0.1:${port}`, namespace: 'down', reconnectMaxMs: 4, heartbeatMs: 3_600_000 })
  try {
    store.open()
    const until = async (n: number) => {
      for (const end = Date.now() + 30_000; sockets < n; await new Promise((resolve) => setTimeout(resolve, 5))) if (Date.now() > end) throw new Error(`${sockets} attempts in 30 s`)
    }
    await until(20) // both connections made and failed a few times
    const from = sockets
    const cpu = process.cpuUsage()
    await until(from + 200)
    const used = process.cpuUsage(cpu)
    const perAttemptMs = (used.user + used.system) / 1000 / (sockets - from)
    expect(store.status().state).toBe('down')
    // Measured: 24-25 ms an attempt when each client rebuilt node-redis' client class (the two
    // connections' options differed, and node-redis keeps one class, for the last options seen),
    // the event loop held up to 223 ms at once (flag requests waited that long); 0.5 ms an attempt
    // since, the loop held 17-18 ms at most. Only the CPU is asserted: on a shared CI machine the
    // process can be descheduled for longer than the old hold, so the loop delay would be noise.
    expect(perAttemptMs).toBeLessThan(3)
  } finally {
    unsubscribe('net.client.socket', count)
    await store.close()
  }
}, 60_000)

// A TCP proxy on a free 127.0.0.1 port in front of one target (a redis-server), for one relay only:
// `cut()` is a network partition for whoever connects through it (open connections are dropped and
// new ones are closed at once, while the target stays up for everyone else); `restore()` heals it.
// `silenceSubscribers()` makes the connections that subscribed half-open: nothing more reaches
// them from Redis, nothing fails, the sockets stay open; `silenceCommands()` does the same to the
// others. `blackHole()` is a Redis that accepts connections and never answers (a proxy whose backend
// is gone, a firewall that lost the connection's state): every connection, open or new, swallows
// what is sent and sends nothing back, for good.
import { connect, createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

export interface TcpProxy {
  /** `redis://127.0.0.1:PORT` (the proxy's port). */
  url: string
  /** Drops every open connection and refuses new ones until {@link restore}. */
  cut(): void
  restore(): void
  /**
   * Stops passing Redis' bytes to the connections that sent a SUBSCRIBE so far (and, with
   * `alsoLater`, to those that subscribe later), leaving them open: a subscription gone deaf.
   */
  silenceSubscribers(alsoLater?: boolean): void
  /** The same for every connection that sent no SUBSCRIBE (a command connection gone half-open). */
  silenceCommands(): void
  /**
   * Every open connection, and every new one until {@link restore}, is kept open and swallows what
   * it is sent (a new one never reaches the target): nothing answers, nothing fails. The ones
   * swallowed stay so after `restore()`; only new connections reach the target again.
   */
  blackHole(): void
  /**
   * New connections go to `port` from here on; open ones stay where they are (a DNS name or a
   * Service moved to a new primary after a failover, while connections made before stay on the old one).
   */
  retarget(port: number): void
  /** Connections open to the proxy from its clients now (one that its client closed is not). */
  connections(): number
  /** Connections its clients opened since it started, open or closed since (refused ones while {@link cut} included). */
  accepted(): number
  close(): Promise<void>
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let cut = false
  let silenceLater = false
  let blackHole = false
  const open = new Set<Socket>()
  const clients = new Set<Socket>()
  const swallowed = new WeakSet<Socket>()
  const subscribers = new Set<Socket>()
  const silent = new Set<Socket>()
  const upstreams = new WeakSet<Socket>()
  let accepted = 0
  let target = targetPort
  const server = createServer((client) => {
    accepted++
    if (cut) return void client.destroy()
    clients.add(client)
    client.once('close', () => clients.delete(client))
    if (blackHole) {
      open.add(client)
      client.once('close', () => open.delete(client))
      client.on('error', () => {})
      client.resume()
      return
    }
    const upstream = connect(target, '127.0.0.1')
    upstreams.add(upstream)
    for (const socket of [client, upstream]) {
      open.add(socket)
      socket.once('close', () => open.delete(socket))
      socket.on('error', () => {})
    }
    client.on('data', (chunk: Buffer) => {
      if (swallowed.has(client)) return
      if (/subscribe/i.test(chunk.toString('latin1'))) {
        subscribers.add(client)
        if (silenceLater) silent.add(client)
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (!silent.has(client) && !swallowed.has(client)) client.write(chunk)
    })
    client.once('close', () => upstream.destroy())
    upstream.once('close', () => client.destroy())
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut() {
      cut = true
      for (const socket of open) socket.destroy()
    },
    restore() {
      cut = false
      blackHole = false
    },
    silenceSubscribers(alsoLater = false) {
      for (const socket of subscribers) silent.add(socket)
      silenceLater ||= alsoLater
    },
    silenceCommands() {
      for (const socket of open) if (!subscribers.has(socket) && !upstreams.has(socket)) silent.add(socket)
    },
    blackHole() {
      blackHole = true
      for (const socket of clients) swallowed.add(socket)
    },
    retarget(port) {
      target = port
    },
    connections: () => clients.size,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((done) => {
        for (const socket of open) socket.destroy()
        server.close(() => done())
      }),
  }
}

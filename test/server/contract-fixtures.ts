// Shared by the contract-*.test.ts files (CONTRACT §8–§10, server side): relays started the way
// an operator starts them, and readers for what a user or an operator sees.
import { afterEach, vi } from 'vitest'
import type { FlagServer, FlagServerOptions } from '@holdfast/server'
import { evaluate, recordingLogger, startServer } from './helpers'
import type { FakeUpstream } from './relay-fakes'

export const ADMIN = 'admin-secret'

afterEach(() => {
  vi.useRealTimers()
})

/** A --flags-url relay polling the fake's /flags.json (hourly: tests poll by refresh or a fake clock). */
export function urlRelay(upstream: FakeUpstream, options: Partial<FlagServerOptions> = {}): Promise<FlagServer> {
  return startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, pollIntervalSeconds: 3600, adminKey: ADMIN, upstreamTimeoutMs: 400, logger: recordingLogger(), ...options })
}

/** A proxy-mode (--upstream) relay in front of the fake. */
export function proxyRelay(upstream: FakeUpstream, options: Partial<FlagServerOptions> = {}): Promise<FlagServer> {
  return startServer({ flags: undefined, upstream: upstream.url, adminKey: ADMIN, upstreamTimeoutMs: 400, logger: recordingLogger(), ...options })
}

/** POST /holdfast/v1/refresh with `Authorization: Bearer key`; `null` sends no Authorization at all. */
export function refresh(server: FlagServer, key: string | null = ADMIN): Promise<Response> {
  return fetch(`${server.url}/holdfast/v1/refresh`, { method: 'POST', headers: key === null ? {} : { Authorization: `Bearer ${key}` } })
}

/** GET /holdfast/v1/status, as JSON. */
export async function status(server: FlagServer): Promise<Record<string, any>> {
  return (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as Record<string, any>
}

/** The bulk OFREP request for `context`: status, headers and the parsed body. */
export async function bulk(server: FlagServer, context: Record<string, unknown> = { targetingKey: 'u' }, headers: Record<string, string> = {}) {
  const response = await evaluate(server, context, headers)
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined }
}

/** An OFREP bulk body's values by flag key. */
export const values = (body: any): Record<string, unknown> => Object.fromEntries((body.flags as Array<{ key: string; value: unknown }>).map((f) => [f.key, f.value]))

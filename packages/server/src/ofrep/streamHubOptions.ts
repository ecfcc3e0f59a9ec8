// What an embedder sets on the event stream (`liveUpdates` of createFlagHandler, createStreamHub;
// the CLI's --max-streams and --max-streams-per-client): read and checked by readStreamHubOptions
// in ../options.ts, filled with their defaults by openStreamHub in stream.ts.

/** Options of {@link createStreamHub}; every one has a default. */
export interface StreamHubOptions {
  /** Most streams open at once; more get 503 with `Retry-After`. Default 10,000. */
  maxConnections?: number
  /**
   * Most streams one client may hold open at once (`--max-streams-per-client`); more get the 503 of
   * `maxConnections`. A client is its remote address, an IPv6 one by its /64 (see
   * {@link streamClientOf}); a stream with no socket (a Web `Request` adapter) counts toward no
   * client (the handler's logger is told so once). Default: none. Behind a proxy or a load balancer every stream comes from its address:
   * leave it unset there and bound each client at the proxy (nginx `limit_conn`), or the relay
   * refuses its own users.
   */
  maxConnectionsPerClient?: number
  /** A comment line is sent this often so proxies and clients know the stream is alive. Default 20,000 ms; 1,000 to 30,000 (clients and proxies drop a stream silent for 60 s). */
  heartbeatMs?: number
  /** The `retry:` field: how long a browser's EventSource waits before reconnecting. Default 3,000 ms. */
  retryMs?: number
  /** After an outage of the source ends, notices are spread at random over this window. Default 10,000 ms. */
  recoveryWindowMs?: number
  /** `inactivityDelaySec` advertised to clients (close the stream after this long hidden). Default 120. */
  inactivityDelaySec?: number
  /** Jitter source. Default `Math.random`. */
  random?: () => number
  /**
   * The clock of "an outage within the last minute" (ms; only differences are read). Default
   * `performance.now()`, a monotonic clock: on the wall clock, NTP stepping it forward an hour
   * between a failure and the recovery made the outage look an hour old, so the recovery's notice
   * went to every stream at once (every tab refetching in the same instant); set back an hour, an
   * ordinary edit up to an hour later was held back as if it ended an outage.
   */
  now?: () => number
  /**
   * The path (and query) advertised as `eventStreams[].endpoint.requestUri`, joined by clients to
   * the origin of their OFREP URL. Default `/holdfast/v1/stream` under the path the handler is
   * mounted at, as the host says it (Express `app.use('/flags', handler)`: `req.baseUrl`;
   * `toFetchHandler` with a `basePath`): `/flags/holdfast/v1/stream`. Set it where a host cuts a
   * prefix without saying so (Fastify's rewrite in docs/server.md, a proxy).
   */
  requestUri?: string
}

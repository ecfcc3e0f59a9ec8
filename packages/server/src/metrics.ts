import { Counter, Gauge, Registry } from 'prom-client'
import { createAgeReader } from './flags/ageReader'
import { scrapedGauge } from './scrapedGauge'

/**
 * The server's Prometheus metrics, in one registry per server (two servers in one process, as in
 * tests, never share counters). Other parts add their own metrics to `registry` (the events sink,
 * the relay's upstream state); every name starts with `holdfast_`. Served as text on `GET /metrics`.
 */
export interface ServerMetrics {
  /** The prom-client registry behind `GET /metrics`. Register extra metrics with `registers: [registry]`. */
  registry: Registry
  /** `holdfast_http_requests_total{route,method,status}`: answered requests. */
  requests: Counter<'route' | 'method' | 'status'>
  /** `holdfast_http_request_duration_seconds{route}`: time from the request to the end of the answer (read-only: fed by {@link ServerMetrics.countRequest}). */
  latency: RouteLatency
  /** `holdfast_evaluation_errors_total{code}`: per-flag failure entries served (PARSE_ERROR, GENERAL, ...). */
  evaluationErrors: Counter<'code'>
  /** `holdfast_answer_cache_total{result}`: bulk answers served from the answer cache (`hit`) or evaluated (`miss`). */
  answerCache: Counter<'result'>
  /** `holdfast_flag_definitions_info{version,origin}`: 1 for the generation in service; `origin` as `metadata.holdfast.source` names it (`upstream`, `data-dir`, `snapshot`, `file`). */
  definitionsInfo: Gauge<'version' | 'origin'>
  /** `holdfast_flag_definitions_flags`: how many flags the generation in service defines. */
  definitionsFlags: Gauge
  /** `holdfast_flag_definitions_age_seconds`: seconds since the generation in service was obtained. */
  definitionsAge: Gauge
  /** `holdfast_flag_reload_failures_total{reason}`: documents not applied (`invalid`/`refused`) and origins not readable (`unreadable`). */
  reloadFailures: Counter<'reason'>
  /** `holdfast_event_loop_delay_seconds{quantile}`: event-loop delay over the last sampling window (p50, p99, max). */
  eventLoopDelay: Gauge<'quantile'>
  /** `holdfast_load_shed_total`: requests answered 503 because the event loop was too far behind. */
  loadShed: Counter
  /**
   * Counts one answered request: `requests` and `latency` for (route, method, status). The hot
   * path's way in: a plain number per label set, added to `requests` when it is read (a scrape),
   * so the counts are exact at every read and a request costs no label hashing. `method` must
   * already be one of a bounded set (the caller maps others to `other`).
   */
  countRequest(route: string, method: string, status: number, seconds: number): void
  /** Counts one bulk answer served from the answer cache (`hit`) or evaluated (`miss`); read like {@link countRequest}. */
  countAnswer(hit: boolean): void
  /** Counts the per-flag failure entries of one answer served; read like {@link countRequest}. */
  countEvaluationErrors(codes: readonly string[]): void
  /** Supplies the values that are read at scrape time (ages, delays). */
  bind(sources: { definitionsFetchedAt?: () => number | undefined; eventLoopDelay?: () => { p50: number; p99: number; max: number } | undefined; now?: () => number }): void
}

/** Creates a {@link ServerMetrics} with a fresh registry (or the one given, to share it with an app). */
export function createServerMetrics(options: { registry?: Registry } = {}): ServerMetrics {
  const registry = options.registry ?? new Registry()
  const registers = [registry]
  let fetchedAt: () => number | undefined = () => undefined
  let loopDelay: () => { p50: number; p99: number; max: number } | undefined = () => undefined
  let now = Date.now
  // The wall clock set back made the definitions look fetched ahead: 0 s old (see ageReader.ts).
  const definitionsAgeOf = createAgeReader()

  // None served (proxy mode, or not ready): no sample; an age of 0 says "fresh".
  const definitionsAge = scrapedGauge(registers, 'holdfast_flag_definitions_age_seconds', 'Seconds since the flag definitions in service were obtained from their origin.', () => {
    const at = fetchedAt()
    return at === undefined ? undefined : definitionsAgeOf(at, now()) / 1000
  })
  const eventLoopDelay = new Gauge({
    name: 'holdfast_event_loop_delay_seconds',
    help: 'Event-loop delay over the last sampling window.',
    labelNames: ['quantile'] as const,
    registers,
    collect() {
      const delay = loopDelay()
      if (!delay) return
      this.set({ quantile: '0.5' }, delay.p50 / 1000)
      this.set({ quantile: '0.99' }, delay.p99 / 1000)
      this.set({ quantile: '1' }, delay.max / 1000)
    },
  })

  // Counts kept as plain numbers on the hot path and added to the prom-client counters by their
  // `collect()`, which prom-client runs on every read (`GET /metrics`, `registry.metrics()`,
  // `counter.get()`): a read sees every request counted before it, and a request pays for a
  // few Map lookups instead of hashing a label object.
  const requestTally = createTally<'route' | 'method' | 'status'>()
  const answerTally = createTally<'result'>()
  const errorTally = createTally<'code'>()
  const requests = new Counter({
    name: 'holdfast_http_requests_total',
    help: 'HTTP requests answered, by route, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    registers,
    collect() {
      requestTally.flush(this)
    },
  })
  const latency = new RouteLatency([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])
  registry.registerMetric(latency as never)
  const hit = answerTally.cell('hit', 'result')
  const miss = answerTally.cell('miss', 'result')

  return {
    registry,
    requests,
    latency,
    evaluationErrors: new Counter({
      name: 'holdfast_evaluation_errors_total',
      help: 'Per-flag failure entries served, by error code.',
      labelNames: ['code'] as const,
      registers,
      collect() {
        errorTally.flush(this)
      },
    }),
    answerCache: new Counter({
      name: 'holdfast_answer_cache_total',
      help: 'Bulk answers served from the answer cache (hit) or evaluated (miss).',
      labelNames: ['result'] as const,
      registers,
      collect() {
        answerTally.flush(this)
      },
    }),
    definitionsInfo: new Gauge({ name: 'holdfast_flag_definitions_info', help: 'The flag definitions in service (1), by version and origin.', labelNames: ['version', 'origin'] as const, registers }),
    definitionsFlags: new Gauge({ name: 'holdfast_flag_definitions_flags', help: 'How many flags the definitions in service define.', registers }),
    definitionsAge,
    reloadFailures: new Counter({ name: 'holdfast_flag_reload_failures_total', help: 'Flag documents not applied (invalid, refused) or origins not readable.', labelNames: ['reason'] as const, registers }),
    eventLoopDelay,
    loadShed: new Counter({ name: 'holdfast_load_shed_total', help: 'Requests answered 503 because the event loop was too far behind.', registers }),
    countRequest(route, method, status, seconds) {
      requestTally.cell3(route, method, status).count++
      latency.observe(route, seconds)
    },
    countAnswer(wasHit) {
      ;(wasHit ? hit : miss).count++
    },
    countEvaluationErrors(codes) {
      for (let i = 0; i < codes.length; i++) errorTally.cell(codes[i], 'code').count++
    },
    bind(sources) {
      if (sources.definitionsFetchedAt) fetchedAt = sources.definitionsFetchedAt
      if (sources.eventLoopDelay) loopDelay = sources.eventLoopDelay
      if (sources.now) now = sources.now
    },
  }
}

/** One line of {@link RouteLatency}'s histogram, in prom-client's `get()` shape. */
export interface LatencyValue {
  /** The series' labels. */
  labels: {
    /** The route's name (`ofrep.bulk`, `ofrep.flag`, `events`, `metrics`, ...). */
    route: string
    /** The bucket's upper bound; absent on the `_sum` and `_count` lines. */
    le?: number | '+Inf'
  }
  /** The cumulative count of the bucket, or the sum or count of the series. */
  value: number
  /** `holdfast_http_request_duration_seconds` with `_bucket`, `_sum` or `_count`. */
  metricName: string
}

/**
 * `holdfast_http_request_duration_seconds{route}`, a Prometheus histogram kept in plain arrays:
 * an observation is a bucket search and three additions, where prom-client's `Histogram` checks
 * and hashes its labels on every call. Registered in the registry
 * as a metric of its own, read with prom-client's `get()` shape, so `GET /metrics` and
 * `registry.getMetricsAsJSON()` show it like any histogram (cumulative `le` buckets, `+Inf`,
 * `_sum`, `_count`).
 */
export class RouteLatency {
  /** The metric's name, as prom-client's registry reads it: `holdfast_http_request_duration_seconds`. */
  readonly name = 'holdfast_http_request_duration_seconds'
  /** The metric's `# HELP` text. */
  readonly help = 'Time from a request to the end of its answer, by route.'
  /** The metric's `# TYPE`: a histogram. */
  readonly type = 'histogram' as const
  /** How prom-client's cluster aggregation combines workers' values: summed. */
  readonly aggregator = 'sum' as const
  private readonly routes = new Map<string, { buckets: Float64Array; sum: number; count: number }>()

  /** `bounds`: the upper bounds of the buckets, ascending (`+Inf` is added). */
  constructor(
    /** The upper bounds of the buckets in seconds, ascending (`+Inf` is added). */
    readonly bounds: readonly number[],
  ) {}

  /** Adds one observation; a value that is not a finite number is ignored. */
  observe(route: string, seconds: number): void {
    if (!Number.isFinite(seconds)) return
    let series = this.routes.get(route)
    if (!series) this.routes.set(route, (series = { buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 }))
    let i = 0
    while (i < this.bounds.length && seconds > this.bounds[i]) i++
    series.buckets[i]++
    series.sum += seconds
    series.count++
  }

  /** The histogram as prom-client's metrics read it. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: LatencyValue[] }> {
    const values: LatencyValue[] = []
    for (const [route, series] of this.routes) {
      let cumulative = 0
      for (let i = 0; i <= this.bounds.length; i++) {
        cumulative += series.buckets[i]
        values.push({ labels: { le: i < this.bounds.length ? this.bounds[i] : '+Inf', route }, value: cumulative, metricName: `${this.name}_bucket` })
      }
      values.push({ labels: { route }, value: series.sum, metricName: `${this.name}_sum` })
      values.push({ labels: { route }, value: series.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  /** Forgets every observation (prom-client's `registry.resetMetrics()`). */
  reset(): void {
    this.routes.clear()
  }
}

/** One label set's count not yet added to its prom-client counter. */
interface TallyCell<L extends string> {
  labels: Partial<Record<L, string>>
  count: number
}

// Counts by label values, in nested Maps so that counting allocates nothing once a label set has
// been seen; `flush` adds what was counted since the last flush to the counter.
function createTally<L extends string>() {
  const cells: Array<TallyCell<L>> = []
  const one = new Map<string, TallyCell<L>>()
  const three = new Map<string, Map<string, Map<number, TallyCell<L>>>>()
  const add = (labels: Partial<Record<L, string>>) => {
    const cell = { labels, count: 0 }
    cells.push(cell)
    return cell
  }
  return {
    /** The cell of a one-label counter. */
    cell(value: string, name: L): TallyCell<L> {
      let cell = one.get(value)
      if (!cell) one.set(value, (cell = add({ [name]: value } as Partial<Record<L, string>>)))
      return cell
    },
    /** The cell of the (route, method, status) counter. */
    cell3(route: string, method: string, status: number): TallyCell<L> {
      let byMethod = three.get(route)
      if (!byMethod) three.set(route, (byMethod = new Map()))
      let byStatus = byMethod.get(method)
      if (!byStatus) byMethod.set(method, (byStatus = new Map()))
      let cell = byStatus.get(status)
      if (!cell) byStatus.set(status, (cell = add({ route, method, status: String(status) } as unknown as Partial<Record<L, string>>)))
      return cell
    },
    flush(counter: Counter<L>): void {
      for (const cell of cells) {
        if (cell.count === 0) continue
        counter.inc(cell.labels, cell.count)
        cell.count = 0
      }
    },
  }
}

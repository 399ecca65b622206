/**
 * Prometheus metrics (prom-client), one registry per daemon instance so several daemons can run in
 * one process (tests). Names start with `observerio_`.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';

/** Values the daemon already keeps, read when /metrics is scraped instead of tracked twice. */
export interface ScrapeSources {
  /** Logs the batcher dropped since it started. */
  logsDropped?: () => number;
  /** The same, by reason (spool_full, stopped, stop_timeout); preferred over logsDropped when set. */
  logsDroppedByReason?: () => Readonly<Record<string, number>>;
  /** Logs waiting for the index, and the bytes of those kept on disk. */
  logSpool?: () => { pending: number; bytes: number };
}

export class Metrics {
  readonly registry = new Registry();
  // The `transport` label: `tcp`, or `ws` for the browser SDK's WebSocket (GET /sdk), which the same
  // connection actors serve (the names keep their tcp_ prefix, dashboards already query them).
  readonly connections = new Gauge({ name: 'observerio_tcp_connections', help: 'Open SDK connections, by transport (tcp, ws)', labelNames: ['transport'] as const, registers: [this.registry] });
  readonly connectionsAccepted = new Counter({ name: 'observerio_tcp_connections_accepted_total', help: 'SDK connections accepted, by transport (tcp, ws)', labelNames: ['transport'] as const, registers: [this.registry] });
  readonly connectionsRefused = new Counter({ name: 'observerio_tcp_connections_refused_total', help: 'SDK connections refused (limit reached), by transport (tcp, ws)', labelNames: ['transport'] as const, registers: [this.registry] });
  readonly linesReceived = new Counter({ name: 'observerio_lines_received_total', help: 'Protocol lines received, by command', labelNames: ['command'] as const, registers: [this.registry] });
  readonly bytesReceived = new Counter({ name: 'observerio_tcp_bytes_received_total', help: 'Bytes received from SDK connections', registers: [this.registry] });
  readonly protocolErrors = new Counter({ name: 'observerio_protocol_errors_total', help: 'Protocol errors answered, by code', labelNames: ['code'] as const, registers: [this.registry] });
  readonly varsWritten = new Counter({ name: 'observerio_vars_written_total', help: 'Variable values written to the store', registers: [this.registry] });
  readonly retryQueueVars = new Gauge({ name: 'observerio_gateway_retry_queue_vars', help: 'Variable changes held in memory because their store write failed to reach the store', registers: [this.registry] });
  readonly retryQueueBytes = new Gauge({ name: 'observerio_gateway_retry_queue_bytes', help: 'Bytes of the variable changes held for a retry', registers: [this.registry] });
  readonly writesRetried = new Counter({ name: 'observerio_gateway_writes_retried_total', help: 'Store writes of variables that failed to reach the store and were queued for a retry', registers: [this.registry] });
  readonly varsRefused = new Counter({ name: 'observerio_gateway_vars_refused_total', help: 'i: lines answered e:unavailable because the retry queue was full', registers: [this.registry] });
  readonly varsDropped = new Counter({ name: 'observerio_gateway_vars_dropped_total', help: 'Variable values lost because their store write failed with a non-retryable error', registers: [this.registry] });
  readonly varChangesSent = new Counter({ name: 'observerio_var_changes_sent_total', help: 'v: lines written to device sockets', registers: [this.registry] });
  readonly logsReceived = new Counter({ name: 'observerio_logs_received_total', help: 'Log entries received from devices', registers: [this.registry] });
  readonly logsIndexed = new Counter({ name: 'observerio_logs_indexed_total', help: 'Log entries accepted by the log index', registers: [this.registry] });
  readonly logsDropped = new Counter({
    name: 'observerio_logs_dropped_total',
    help: 'Log entries dropped, by reason: spool_full (the index fell too far behind), stopped, stop_timeout',
    labelNames: ['reason'] as const,
    registers: [this.registry],
    // The batcher counts its drops; the counter catches up with it when scraped.
    collect: () => {
      const byReason = this.sources.logsDroppedByReason?.() ?? { spool_full: this.sources.logsDropped?.() ?? 0 };
      for (const [reason, total] of Object.entries(byReason)) {
        const seen = this.droppedSeen.get(reason) ?? 0;
        // Every reason is shown, at 0 too, so a scrape can tell "none dropped" from "not measured".
        this.logsDropped.inc({ reason }, Math.max(0, total - seen));
        this.droppedSeen.set(reason, Math.max(seen, total));
      }
    },
  });
  readonly logsRejected = new Counter({
    name: 'observerio_logs_rejected_total',
    help: 'Log entries the log index refused for what they hold (after bisecting their batch), by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly logsPending = new Gauge({
    name: 'observerio_logs_pending',
    help: 'Log entries waiting for the log index (in the spool or being written)',
    registers: [this.registry],
    collect: () => {
      this.logsPending.set(this.sources.logSpool?.().pending ?? 0);
    },
  });
  readonly logSpoolBytes = new Gauge({
    name: 'observerio_log_spool_bytes',
    help: 'Bytes of the log entries kept in the on-disk spool while the log index is unavailable',
    registers: [this.registry],
    collect: () => {
      this.logSpoolBytes.set(this.sources.logSpool?.().bytes ?? 0);
    },
  });
  readonly indexBatchSize = new Histogram({
    name: 'observerio_log_index_batch_size',
    help: 'Documents per log index write',
    buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000],
    registers: [this.registry],
  });
  readonly indexBatchSeconds = new Histogram({
    name: 'observerio_log_index_batch_seconds',
    help: 'Latency of one log index write',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly outboxLength = new Gauge({
    name: 'observerio_outbox_vars',
    help: 'Variable changes waiting for a device, per the outbox lengths this node last wrote or read',
    registers: [this.registry],
    collect: () => {
      let total = 0;
      for (const n of this.outboxByKey.values()) total += n;
      this.outboxLength.set(total);
    },
  });
  private readonly outboxByKey = new Map<string, number>();

  /** Records a key's outbox length as this node just saw it (after a push or a take). */
  setOutbox(apiKey: string, length: number): void {
    if (length > 0) this.outboxByKey.set(apiKey, length);
    else this.outboxByKey.delete(apiKey);
  }
  readonly wsClients = new Gauge({ name: 'observerio_ws_clients', help: 'Open dashboard WebSockets', registers: [this.registry] });
  readonly messagesPublished = new Counter({ name: 'observerio_pubsub_messages_published_total', help: 'Messages published on pubsub, by kind', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly restarts = new Counter({ name: 'observerio_actor_restarts_total', help: 'Actor restarts, by supervisor', labelNames: ['supervisor'] as const, registers: [this.registry] });
  readonly crashes = new Counter({ name: 'observerio_actor_crashes_total', help: 'Actor crashes, by supervisor', labelNames: ['supervisor'] as const, registers: [this.registry] });
  readonly backendUp = new Gauge({ name: 'observerio_backend_up', help: '1 when the backend answers its health check', labelNames: ['backend', 'kind'] as const, registers: [this.registry] });
  readonly eventLoopLag = new Gauge({ name: 'observerio_event_loop_lag_seconds', help: 'Event loop delay, p99 over the last scrape interval', registers: [this.registry] });
  readonly httpRequests = new Counter({ name: 'observerio_http_requests_total', help: 'HTTP requests, by route and status', labelNames: ['route', 'status'] as const, registers: [this.registry] });
  private readonly loop: IntervalHistogram;
  private sources: ScrapeSources = {};
  private readonly droppedSeen = new Map<string, number>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    // prom-client prepends the prefix to its own names (process_cpu_seconds_total, nodejs_heap_*),
    // so the prefix is ours alone: observerio_process_cpu_seconds_total, not observerio_process_process_*.
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'observerio_' });
    this.loop = monitorEventLoopDelay({ resolution: 10 });
    this.loop.enable();
    // Both transports shown from the start: a scrape can tell "none open" from "not measured".
    for (const transport of ['tcp', 'ws']) {
      this.connections.set({ transport }, 0);
      this.connectionsAccepted.inc({ transport }, 0);
      this.connectionsRefused.inc({ transport }, 0);
    }
  }

  /** Where the values read at scrape time come from (set once the daemon's parts exist). */
  readFromAtScrape(sources: ScrapeSources): void {
    this.sources = sources;
  }

  /** Prometheus text for /metrics. */
  async render(): Promise<string> {
    this.sampleLoop();
    return this.registry.metrics();
  }

  /** The same as prom-client's JSON, which AggregatorRegistry sums over the workers of `--workers N`. */
  async renderJson(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    this.sampleLoop();
    return (await this.registry.getMetricsAsJSON()) as MetricObjectWithValues<MetricValue<string>>[];
  }

  private sampleLoop(): void {
    this.eventLoopLag.set(this.loop.percentile(99) / 1e9);
    this.loop.reset();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    this.loop.disable();
  }
}

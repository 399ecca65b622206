/**
 * One simulated game for `observerio simulate`, built on the public SDK like a real game: it connects
 * as device `sim-<i>`, publishes a few tunables, logs at a steady rate, bumps its score now and then,
 * and adopts every change pushed from the dashboard (and logs that it did).
 */
import { Client, SdkError, type VarChange, type VarValue } from '../sdk/index.js';

/** What every device of one run adds to; read by the progress line and the summary. */
export interface SimCounters {
  connected: number;
  failed: number;
  /** Devices online right now. */
  online: number;
  reconnects: number;
  disconnects: number;
  /** Variable values the devices set (the SDK's echo of a dashboard change is not counted). */
  varsSet: number;
  changesReceived: number;
  /** By code: connect failures, daemon `e:` lines, lost connections, dropped logs, ... */
  errors: Map<string, number>;
}

export function newCounters(): SimCounters {
  return { connected: 0, failed: 0, online: 0, reconnects: 0, disconnects: 0, varsSet: 0, changesReceived: 0, errors: new Map() };
}

export function countError(c: SimCounters, code: string): void {
  c.errors.set(code, (c.errors.get(code) ?? 0) + 1);
}

export interface DeviceOptions {
  index: number;
  host: string;
  port: number;
  apiKey: string;
  /** Log lines per second. */
  rate: number;
  /** Milliseconds between score updates; 0 = never. */
  varIntervalMs: number;
  counters: SimCounters;
}

/** The tunables every simulated game publishes, with their starting values. */
export const INITIAL_VARS: ReadonlyArray<{ name: string; value: VarValue; type: string }> = [
  { name: 'speed', value: 5, type: 'integer' },
  { name: 'gravity', value: 9.81, type: 'float' },
  { name: 'god_mode', value: false, type: 'boolean' },
  { name: 'difficulty', value: 'normal', type: 'string' },
  { name: 'score', value: 0, type: 'integer' },
];

/** mulberry32: a tiny seeded generator, so each device's stream of events is varied but repeatable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class SimulatedDevice {
  readonly deviceId: string;
  client: Client | null = null;
  /** Log calls made; what the daemon got is this minus what the SDK dropped or still holds. */
  logged = 0;
  /** Log lines of the steady stream so far (the rate's count; changes applied log extra lines). */
  private scheduled = 0;
  private startedAt = 0;
  private nextVarAt = 0;
  private frame = 0;
  private readonly state = new Map<string, VarValue>(INITIAL_VARS.map((v) => [v.name, v.value]));
  private readonly random: () => number;

  constructor(private readonly o: DeviceOptions) {
    this.deviceId = `sim-${o.index}`;
    this.random = prng(o.index + 1);
  }

  /** Connects and publishes the variables; rejects with the SDK's error (its `code` says why). */
  async connect(): Promise<void> {
    const c = this.o.counters;
    const client = new Client({
      host: this.o.host,
      port: this.o.port,
      apiKey: this.o.apiKey,
      deviceId: this.deviceId,
      // A device with nothing to say (--rate 0) must not be closed by the daemon's idle timeout.
      heartbeatMs: 60_000,
    });
    // Listeners first: a change buffered for the key may arrive in the same chunk as the OK.
    client.on('connected', ({ reconnected }) => {
      c.online++;
      if (reconnected) c.reconnects++;
      else c.connected++;
    });
    client.on('disconnected', ({ error }) => {
      c.online--;
      if (error) {
        c.disconnects++;
        countError(c, error.code);
      }
    });
    client.on('vars', (changes) => this.apply(changes));
    client.on('error', (err) => countError(c, err.code));
    // Sent right after the daemon's OK, before any change waiting in the outbox is applied.
    client.setVars(INITIAL_VARS);
    this.client = client;
    try {
      await client.start();
    } catch (err) {
      this.client = null;
      throw err;
    }
    c.varsSet += INITIAL_VARS.length;
    this.startedAt = Date.now();
    this.nextVarAt = this.startedAt + this.o.varIntervalMs * (0.5 + this.random());
  }

  /** Emits the log lines (and score update) due by `now`: the rate holds however late the tick is. */
  tick(now: number): void {
    const client = this.client;
    if (!client || this.startedAt === 0 || client.state === 'closed') return;
    const due = Math.floor((this.o.rate * (now - this.startedAt)) / 1000);
    for (; this.scheduled < due; this.scheduled++, this.logged++) this.logEvent(client);
    if (this.o.varIntervalMs > 0 && now >= this.nextVarAt) {
      this.nextVarAt = now + this.o.varIntervalMs;
      const score = Number(this.state.get('score') ?? 0) + 1 + Math.floor(this.random() * 100);
      this.state.set('score', score);
      client.setVar('score', score, 'integer');
      this.o.counters.varsSet++;
    }
  }

  /** Logs the SDK has written to its socket so far (or, after close, ever). */
  get logsSent(): number {
    return this.client ? this.logged - this.client.dropped - this.client.queuedLogs : 0;
  }

  async close(): Promise<void> {
    await this.client?.close().catch((err: unknown) => countError(this.o.counters, err instanceof SdkError ? err.code : 'close_failed'));
  }

  private apply(changes: VarChange[]): void {
    const client = this.client;
    for (const ch of changes) {
      this.o.counters.changesReceived++;
      const before = this.state.get(ch.name);
      // The SDK already holds the new value (client.get); the game adopts it into its own state.
      this.state.set(ch.name, ch.value);
      client?.log(`applied ${ch.name}=${ch.raw} from the dashboard (was ${before === undefined ? 'unset' : String(before)})`, {
        level: 'info',
        event: 'var_applied',
        var: ch.name,
        value: ch.raw,
      });
      this.logged++;
    }
  }

  private logEvent(client: Client): void {
    this.frame += 1 + Math.floor(this.random() * 30);
    const r = this.random();
    const s = this.state;
    const scene = `level-${1 + (this.o.index % 8)}`;
    if (r < 0.4) client.log(`frame time ${(12 + this.random() * 10).toFixed(1)}ms`, { level: 'debug', scene, frame: this.frame });
    else if (r < 0.7) {
      const x = Math.floor(this.random() * 1000);
      const y = Math.floor(this.random() * 1000);
      client.log(`player moved to (${x}, ${y}) at speed ${String(s.get('speed'))}`, { level: 'info', scene, frame: this.frame, x, y });
    } else if (r < 0.88) client.log(`enemy spawned on ${String(s.get('difficulty'))} difficulty`, { level: 'info', scene, frame: this.frame, gravity: s.get('gravity') });
    else if (r < 0.97) client.log(`low fps: ${20 + Math.floor(this.random() * 25)}`, { level: 'warn', scene, frame: this.frame, godMode: s.get('god_mode') });
    else client.log('shader compile failed: water.frag', { level: 'error', scene, frame: this.frame, shader: 'water' });
  }
}

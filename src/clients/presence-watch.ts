/**
 * The presence watch (DESIGN.md §6, §8, issue 12): tells this node's dashboards when a device of
 * their key goes offline, comes online or changes labels, with a `device_state` event in the
 * `GET /api/devices` shape. A device of a node that died (SIGKILL, power cut) is never marked offline
 * by anyone: its presence simply lapses in the store, so only a reader notices. Each node therefore
 * watches the keys that have a dashboard socket open on it: every `heartbeatMs` it lists each such
 * key's devices (one store call per watched key), diffs online, labels, address and generated against
 * the previous look, and hands the summaries of the devices that changed to its own sockets.
 *
 * Why each node for its own sockets, not one node for everyone over pubsub: there is no election to
 * get wrong, no duplicate events when several nodes watch one key, and no traffic at all for a key
 * nobody looks at; the cost is one `listDevices` per (node, watched key) per period. A lapse reaches
 * the dashboards within presenceTtlMs (of the dead node) plus one period. A `device` event of the key
 * (a socket connected or closed on any node) brings the next look forward, so ordinary comings and
 * goings show within milliseconds; a second look a while after the last event of a burst catches
 * what the key's actor recorded only after the first (in a connect or disconnect storm it records
 * its sockets in turns, behind the events). Strategy and pending counts are carried when a device's entry
 * changes, but a change of only those does not by itself raise an event (it would cost a read per
 * device per period).
 */
import type { Logger } from 'pino';
import type { VariablesConfig } from '../config.js';
import type { DeviceRecord, VariablesStore } from '../variables/store-contract.js';
import type { DeviceStateEvent, DeviceSummary } from '../wire.js';

export interface PresenceWatchDeps {
  store: Pick<VariablesStore, 'listDevices'>;
  variables: Pick<VariablesConfig, 'heartbeatMs' | 'deviceRememberMs'>;
  /** The devices as `GET /api/devices` lists them. */
  summaries(apiKey: string, records: readonly DeviceRecord[]): Promise<DeviceSummary[]>;
  /** Hands an event to this node's dashboard sockets of the key. */
  forward(apiKey: string, event: DeviceStateEvent): void;
  logger: Logger;
}

interface Watched {
  count: number;
  /** deviceId → what the last look saw of it; null until the first look (which raises no events). */
  known: Map<string, string> | null;
  checking: boolean;
  again: boolean;
  soon: NodeJS.Timeout | null;
  settle: NodeJS.Timeout | null;
}

/** After a `device` event: the node that took the socket records it in the store right after publishing. */
const NUDGE_DELAY_MS = 50;
/** After the last `device` event of a burst: the key's actor has recorded the burst's sockets by then. */
export const NUDGE_SETTLE_MS = 1000;

/** What a change of raises an event; lastSeen moves with every heartbeat and does not. */
const signature = (d: DeviceRecord): string => JSON.stringify([d.online, Object.entries(d.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)), d.lastAddress, d.generated]);

export class PresenceWatch {
  private readonly keys = new Map<string, Watched>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: PresenceWatchDeps) {}

  /** A dashboard socket of the key opened here; the returned function (idempotent) is its close. */
  watch(apiKey: string): () => void {
    let w = this.keys.get(apiKey);
    if (!w) {
      w = { count: 0, known: null, checking: false, again: false, soon: null, settle: null };
      this.keys.set(apiKey, w);
      void this.check(apiKey, w);
    }
    const mine = w;
    mine.count += 1;
    if (!this.timer) {
      this.timer = setInterval(() => {
        for (const [k, v] of this.keys) void this.check(k, v);
      }, this.deps.variables.heartbeatMs);
      this.timer.unref();
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      mine.count -= 1;
      if (mine.count > 0 || this.keys.get(apiKey) !== mine) return;
      this.keys.delete(apiKey);
      if (mine.soon) clearTimeout(mine.soon);
      if (mine.settle) clearTimeout(mine.settle);
      if (this.keys.size === 0) this.stop();
    };
  }

  /** Something about the key's devices just happened: look again shortly rather than at the next period. */
  nudge(apiKey: string): void {
    const w = this.keys.get(apiKey);
    if (!w) return;
    if (w.settle) clearTimeout(w.settle);
    w.settle = setTimeout(() => {
      w.settle = null;
      if (this.keys.get(apiKey) === w) void this.check(apiKey, w);
    }, NUDGE_SETTLE_MS);
    w.settle.unref();
    if (w.soon) return;
    w.soon = setTimeout(() => {
      w.soon = null;
      if (this.keys.get(apiKey) === w) void this.check(apiKey, w);
    }, NUDGE_DELAY_MS);
    w.soon.unref();
  }

  /** Keys watched on this node. */
  get size(): number {
    return this.keys.size;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const w of this.keys.values()) {
      if (w.soon) clearTimeout(w.soon);
      if (w.settle) clearTimeout(w.settle);
    }
  }

  /** One look at the key's devices; never two at once for one key (a look asked for meanwhile runs after). */
  private async check(apiKey: string, w: Watched): Promise<void> {
    if (w.checking) {
      w.again = true;
      return;
    }
    w.checking = true;
    try {
      do {
        w.again = false;
        await this.look(apiKey, w);
      } while (w.again && this.keys.get(apiKey) === w);
    } catch (err) {
      this.deps.logger.warn({ err, apiKey }, 'presence check failed');
    } finally {
      w.checking = false;
    }
  }

  private async look(apiKey: string, w: Watched): Promise<void> {
    const { store, variables } = this.deps;
    const now = Date.now();
    const list = await store.listDevices(apiKey, variables.deviceRememberMs, now);
    const seen = new Map(list.map((d) => [d.deviceId, signature(d)]));
    const before = w.known;
    w.known = seen;
    if (!before) return;
    // A device that dropped out of the remember window was offline already; it needs no event.
    const changed = list.filter((d) => before.get(d.deviceId) !== seen.get(d.deviceId));
    if (changed.length === 0 || this.keys.get(apiKey) !== w) return;
    for (const device of await this.deps.summaries(apiKey, changed)) this.deps.forward(apiKey, { type: 'device_state', device });
  }
}

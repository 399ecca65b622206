/**
 * The `device` events of this node's SDK connections (a socket verified or went), to the key's
 * dashboards on every node, in turns DEVICE_EVENTS_TURN_MS apart at least: an event arriving sooner
 * after the previous turn waits the rest, and the events that follow join it, one pubsub message per
 * key (Gateway.publishMany, which /ws unpacks into one frame each, in order). Each event was one
 * PUBLISH, and in a connect storm one write to Redis per socket: the largest single cost of a verify
 * once the client actors' store work was batched. A lone event goes out at once, as before.
 *
 * Order holds per key (one list per key, published in the order events came). While the listener
 * is down (from its terminate to its next init: at shutdown, before `conns` closes every
 * connection) events go out at once, so a stopping node's disconnects reach pubsub while it is up.
 */
import type { DashboardEvent, DeviceInfo, Gateway } from '../gateway/gateway.js';
import { Turns } from '../otp/index.js';
import { channels } from '../pubsub/pubsub.js';

/** The client actors' conn_up turn (UP_TURN_MS): a storm's events cost a publish per key per 50 ms, a dashboard sees them that much later at most. */
export const DEVICE_EVENTS_TURN_MS = 50;

/** The one key of this node's turns: every key's events go out in the same turn. */
const ALL = 'all';

export class DeviceEvents {
  private pending = new Map<string, DashboardEvent[]>();
  private waiting = 0;
  private readonly turns: Turns<typeof ALL>;
  private timer: NodeJS.Timeout | null = null;
  private batching = true;

  constructor(
    private readonly gateway: Pick<Gateway, 'publishMany'>,
    now: () => number = () => performance.now(),
  ) {
    this.turns = new Turns(DEVICE_EVENTS_TURN_MS, now);
  }

  /** Events waiting for their turn. */
  get size(): number {
    return this.waiting;
  }

  /** Gateway.device's signature: the connection layer calls this in its place. */
  device(event: 'connected' | 'disconnected', device: DeviceInfo): void {
    const e: DashboardEvent = { type: 'device', event, device };
    const list = this.pending.get(device.apiKey);
    if (list) list.push(e);
    else this.pending.set(device.apiKey, [e]);
    this.waiting += 1;
    if (this.timer) return;
    if (!this.batching) return this.flush();
    this.timer = this.turns.schedule(ALL, () => this.flush());
  }

  /** Publishes everything waiting now, one message per key. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.turns.taken(ALL);
    if (this.waiting === 0) return;
    const pending = this.pending;
    this.pending = new Map();
    this.waiting = 0;
    for (const [apiKey, events] of pending) this.gateway.publishMany(channels.devices(apiKey), events);
  }

  /** Off: what waits goes out now, and every later event at once, until it is turned on again. */
  setBatching(on: boolean): void {
    this.batching = on;
    if (!on) this.flush();
  }
}

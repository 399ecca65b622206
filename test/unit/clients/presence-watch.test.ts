import { expect } from 'chai';
import { pino } from 'pino';
import { NUDGE_SETTLE_MS, PresenceWatch } from '../../../src/clients/presence-watch.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import type { DeviceRecord } from '../../../src/variables/store-contract.js';
import type { DeviceStateEvent, DeviceSummary } from '../../../src/wire.js';
import { eventually } from '../../helpers/eventually.js';

describe('PresenceWatch (device_state from the store, memory store)', () => {
  let store: MemoryStore;
  let events: Array<{ apiKey: string; event: DeviceStateEvent }>;
  let watch: PresenceWatch;
  let looks: number;

  const summary = (d: DeviceRecord): DeviceSummary => ({ ...d, labels: { ...d.labels }, strategy: null, pendingCount: 0 });
  const states = (id: string) => events.filter((e) => e.event.device.deviceId === id).map((e) => e.event.device);

  beforeEach(async () => {
    store = new MemoryStore({ snapshotIntervalMs: 0, sessionTtlMs: 60_000, outboxMaxPerKey: 100, journalFsyncMs: 1000, journalCompactBytes: 1 << 24 }, { dataDir: null });
    await store.start();
    events = [];
    looks = 0;
    const listDevices = store.listDevices.bind(store);
    watch = new PresenceWatch({
      store: {
        listDevices: (k, r, n) => {
          looks += 1;
          return listDevices(k, r, n);
        },
      },
      variables: { heartbeatMs: 20, deviceRememberMs: 60_000 },
      summaries: async (_k, records) => records.map(summary),
      forward: (apiKey, event) => events.push({ apiKey, event }),
      logger: pino({ level: 'silent' }),
    });
  });
  afterEach(() => watch.stop());

  it('raises nothing for what was already there, then online, labels and a lapsed presence (no markOffline)', async () => {
    await store.touchDevice('K', { deviceId: 'old', address: '10.0.0.1:1', generated: false }, Date.now(), 60_000);
    const release = watch.watch('K');
    await eventually(() => expect(looks).to.be.greaterThan(1));
    expect(events).to.deep.equal([]);

    await store.touchDevice('K', { deviceId: 'p1', address: '10.0.0.2:1', generated: false }, Date.now(), 300);
    await eventually(() => expect(states('p1').map((d) => d.online)).to.deep.equal([true]));
    await store.setLabels('K', 'p1', { platform: 'ios' });
    await eventually(() => expect(states('p1').at(-1)?.labels).to.deep.equal({ platform: 'ios' }));
    // Heartbeats move lastSeen only: no event for them.
    const n = events.length;
    await store.heartbeat('K', ['p1'], Date.now(), 300);
    await eventually(() => expect(looks).to.be.greaterThan(6));
    expect(events.length).to.equal(n);
    // Nobody marks it offline: the presence lapses and the watch notices.
    await eventually(() => expect(states('p1').at(-1)?.online).to.equal(false), { timeoutMs: 2000 });
    expect(events.every((e) => e.apiKey === 'K' && e.event.type === 'device_state')).to.equal(true);
    expect(states('old')).to.deep.equal([]);
    release();
  });

  it('watches a key while any of its sockets is open, and stops looking after the last release', async () => {
    const r1 = watch.watch('K');
    const r2 = watch.watch('K');
    expect(watch.size).to.equal(1);
    r1();
    r1();
    expect(watch.size).to.equal(1);
    r2();
    expect(watch.size).to.equal(0);
    await new Promise((r) => setTimeout(r, 30));
    const before = looks;
    await store.touchDevice('K', { deviceId: 'late', address: null, generated: true }, Date.now(), 60_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(looks).to.equal(before);
    expect(events).to.deep.equal([]);
  });

  it('a nudge looks again before the next period', async () => {
    watch = new PresenceWatch({
      store,
      variables: { heartbeatMs: 60_000, deviceRememberMs: 60_000 },
      summaries: async (_k, records) => records.map(summary),
      forward: (apiKey, event) => events.push({ apiKey, event }),
      logger: pino({ level: 'silent' }),
    });
    const release = watch.watch('K');
    await new Promise((r) => setTimeout(r, 20));
    await store.touchDevice('K', { deviceId: 'n1', address: null, generated: false }, Date.now(), 60_000);
    watch.nudge('K');
    await eventually(() => expect(states('n1').map((d) => d.online)).to.deep.equal([true]), { timeoutMs: 1000 });
    release();
  });

  it('looks once more a while after a burst of nudges: what the store recorded after the first look still shows', async () => {
    watch = new PresenceWatch({
      store,
      variables: { heartbeatMs: 60_000, deviceRememberMs: 60_000 },
      summaries: async (_k, records) => records.map(summary),
      forward: (apiKey, event) => events.push({ apiKey, event }),
      logger: pino({ level: 'silent' }),
    });
    const release = watch.watch('K');
    await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    watch.nudge('K');
    // Recorded after the first look (its node's actor was busy with a storm of sockets).
    await new Promise((r) => setTimeout(r, 200));
    await store.touchDevice('K', { deviceId: 'late', address: null, generated: false }, Date.now(), 60_000);
    await eventually(() => expect(states('late').map((d) => d.online)).to.deep.equal([true]), { timeoutMs: NUDGE_SETTLE_MS + 2000 });
    expect(Date.now() - t0).to.be.below(NUDGE_SETTLE_MS + 1500);
    release();
  });
});

import { expect } from 'chai';
import { pino } from 'pino';
import { ClientActors, clientsChildSpec, REPORT_TURN_MS, UP_TURN_MS, type VerifiedConn } from '../../../src/clients/client-actors.js';
import type { ClientMsg, DeviceConnEntry } from '../../../src/clients/client.js';
import { ackChannel } from '../../../src/clients/var-changes.js';
import type { DashboardEvent, DeviceInfo, Gateway } from '../../../src/gateway/gateway.js';
import { Metrics } from '../../../src/metrics.js';
import { dynamicSupervisor, Registry, Runtime, supervisor, worker, type ActorRef } from '../../../src/otp/index.js';
import { LocalPubSub } from '../../../src/pubsub/local-pubsub.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { eventually } from '../../helpers/eventually.js';

const API_KEY = 'AbCdEf123456';
const silent = pino({ level: 'silent' });

describe('ClientActors (the client actors’ service)', () => {
  let pubsub: LocalPubSub;
  let store: MemoryStore;
  let deviceConns: Registry<DeviceConnEntry>;
  let clientActors: Registry<null>;
  let events: DashboardEvent[];
  let timelines: Array<{ deviceId: string; names: string[] }>;
  let clients: ClientActors;
  let rt: Runtime | null;

  /** The tree around the service: the registry worker, the clients supervisor and one device connection actor. */
  const start = async (connRestart: 'permanent' | 'temporary' = 'permanent') => {
    const conn = { id: 'conn', restart: connRestart, start: worker<null, never>({ init: () => null }) };
    rt = await Runtime.start({ id: 'root', start: supervisor({ strategy: 'one_for_one' }, [clients.registryChildSpec(), clientsChildSpec(), conn]) }, { logger: silent });
    return rt;
  };
  /** Whether anyone listens on the node's ack channel (publish counts the nodes with a subscriber). */
  const ackListeners = () => pubsub.publish(ackChannel('node-1'), { requestId: 'probe', delivered: 0 });

  /** The turns' clock: the real one, or a moment a test holds it at (a slow machine must not end a storm). */
  let frozenAt: number | null = null;

  beforeEach(async () => {
    frozenAt = null;
    pubsub = new LocalPubSub();
    await pubsub.start();
    store = new MemoryStore({ snapshotIntervalMs: 0, sessionTtlMs: 60_000, outboxMaxPerKey: 100, journalFsyncMs: 1000, journalCompactBytes: 1 << 24 }, { dataDir: null });
    await store.start();
    deviceConns = new Registry<DeviceConnEntry>('deviceConns', 'duplicate', { id: (e) => e.connId, group: (e) => e.deviceKey });
    clientActors = new Registry<null>('clientActors', 'unique');
    events = [];
    timelines = [];
    rt = null;
    clients = new ClientActors(() => (rt as Runtime).dynamicSupervisor('/root/clients'), {
      store,
      pubsub,
      deviceConns,
      clientActors,
      gateway: {
        publish: (_ch: string, e: DashboardEvent) => events.push(e),
        publishMany: (_ch: string, es: DashboardEvent[]) => events.push(...es),
        timeline: (_k: string, deviceId: string, entries: Array<{ fields: { name: string } }>) => timelines.push({ deviceId, names: entries.map((e) => e.fields.name) }),
      } as unknown as Gateway,
      metrics: new Metrics(),
      logger: silent,
      nodeId: 'node-1',
      idleMs: 50,
      ackTimeoutMs: 100,
      now: () => frozenAt ?? performance.now(),
      variables: { historyMaxEntries: 100, historyMaxAgeMs: 3_600_000, deviceRememberMs: 60_000, presenceTtlMs: 5000, heartbeatMs: 1000, maxCommitRetries: 5 },
    });
  });
  afterEach(async () => {
    await rt?.stop();
    await store.stop();
    await pubsub.stop();
  });

  describe('registryChildSpec', () => {
    it('subscribes to the ack channel at start, keeps it across a restart of the worker, ends it at shutdown', async () => {
      const tree = await start();
      await eventually(async () => expect(await ackListeners()).to.equal(1));
      await tree.kill('/root/registry', 'drill');
      await eventually(() => expect(tree.find('/root/registry')?.status).to.equal('running'));
      expect(await ackListeners()).to.equal(1);
      await tree.stop();
      rt = null;
      expect(await ackListeners()).to.equal(0);
    });

    it('counts the device connections, the keys with connections and the client actors', async () => {
      const tree = await start();
      expect(tree.tree().children?.find((c) => c.name === 'registry')?.info).to.deep.equal({ sockets: 0, keysWithSockets: 0, clients: 0 });
    });
  });

  describe('deviceVerified', () => {
    const verifiedConn = (lines: string[], verified: VerifiedConn['verified']): VerifiedConn => ({
      id: 'c-1',
      verified,
      write: (line) => lines.push(line) > 0,
      device: (node) => ({ id: 'c-1', node }) as unknown as DeviceInfo,
    });
    const connRef = (tree: Runtime) => (tree.find('/root/conn') as unknown as { ref: ActorRef<unknown> }).ref;

    it('registers the socket, starts the key’s client actor, which sends it the overrides in effect', async () => {
      const tree = await start();
      expect(await clients.change(API_KEY, { name: 'speed', value: 3 })).to.include({ delivered: 0, buffered: true });
      const lines: string[] = [];
      clients.deviceVerified(verifiedConn(lines, { apiKey: API_KEY, deviceId: 'phone' }), connRef(tree));
      expect(deviceConns.lookup(API_KEY).map((e) => e.value.deviceId)).to.deep.equal(['phone']);
      expect(deviceConns.lookup(API_KEY)[0]?.value.device()).to.deep.equal({ id: 'c-1', node: 'node-1' });
      await eventually(() => expect(lines).to.have.length(1));
      expect(lines[0]).to.match(new RegExp(`^v:${API_KEY}:`));
      expect(clientActors.whereis(API_KEY)).to.not.equal(undefined);
      expect([...(await store.getLastSent(API_KEY, 'phone')).values()]).to.deep.equal([{ name: 'speed', type: 'integer', value: '3' }]);
      expect((await store.getDevice(API_KEY, 'phone', Date.now()))?.online).to.equal(true);
    });

    it('sends the override again when the device reports another value, and keeps the report as its own', async () => {
      const tree = await start();
      await clients.change(API_KEY, { name: 'speed', value: 3 });
      const lines: string[] = [];
      const conn = verifiedConn(lines, { apiKey: API_KEY, deviceId: 'phone' });
      clients.deviceVerified(conn, connRef(tree));
      clients.deviceReported(conn, [{ name: 'speed', type: 'integer', value: '1' }]);
      await eventually(() => expect(lines).to.have.length(2));
      expect(lines[1]).to.equal(lines[0]);
      expect(await store.getReported(API_KEY, 'phone')).to.deep.equal([{ name: 'speed', type: 'integer', value: '1' }]);
    });

    it('gives a connection without a device id a generated one', async () => {
      const tree = await start();
      clients.deviceVerified(verifiedConn([], { apiKey: API_KEY, deviceId: null }), connRef(tree));
      const e = deviceConns.lookup(API_KEY)[0]?.value;
      expect(e?.generated).to.equal(true);
      expect(e?.deviceKey).to.match(/^anon-[0-9a-f]{8}-c-1$/);
    });

    it('drops the socket when its connection actor ends, and the idle client actor then stops', async () => {
      // Temporary: the kill ends it (a restart keeps the socket, below).
      const tree = await start('temporary');
      clients.deviceVerified(verifiedConn([], { apiKey: API_KEY, deviceId: null }), connRef(tree));
      await eventually(() => expect(clientActors.whereis(API_KEY)).to.not.equal(undefined));
      await tree.kill('/root/conn', 'connection gone');
      expect(deviceConns.countKey(API_KEY)).to.equal(0);
      await eventually(() => expect(clientActors.whereis(API_KEY)).to.equal(undefined));
    });

    it('keeps the socket through restarts of its connection actor: no store call, no offline, every change still reaches it', async () => {
      const lines: string[] = [];
      const conn = verifiedConn(lines, { apiKey: API_KEY, deviceId: 'phone' });
      // As the connection actor does: every incarnation's init hands its verified socket over.
      const spec = { id: 'conn', restart: 'transient' as const, start: worker<null, never>({ init: (ctx) => (clients.deviceVerified(conn, ctx.self), null) }) };
      rt = await Runtime.start({ id: 'root', start: supervisor({ strategy: 'one_for_one' }, [clients.registryChildSpec(), clientsChildSpec(), { id: 'conns', start: dynamicSupervisor() }]) }, { logger: silent });
      const tree = rt;
      const { path } = await tree.dynamicSupervisor('/root/conns').startChild(spec);
      await clients.change(API_KEY, { name: 'speed', value: 3 });
      await eventually(() => expect(lines).to.have.length(1));
      const entry = deviceConns.get(API_KEY, 'c-1');
      const calls: string[] = [];
      for (const name of ['touchDevices', 'markOffline', 'listOverrides', 'getLastSent', 'getReported', 'getSentAndReported', 'setLastSent', 'replaceLastSent'] as const) {
        const f = (store[name] as (...a: unknown[]) => unknown).bind(store);
        (store as unknown as Record<string, unknown>)[name] = (...a: unknown[]) => (calls.push(name), f(...a));
      }
      for (let i = 0; i < 3; i++) await tree.kill(path, `crash ${i}`);
      expect(tree.find(path)?.restarts).to.equal(3);
      // The same entry all along: never dropped, never taken on again.
      expect(deviceConns.get(API_KEY, 'c-1')).to.equal(entry);
      expect(deviceConns.countKey(API_KEY)).to.equal(1);
      const changed = await clients.change(API_KEY, { name: 'speed', value: 4 });
      expect(changed.delivered).to.equal(1);
      await eventually(() => expect(lines).to.have.length(2));
      // Only the change's own delivery touched the store; the restarts asked nothing of it.
      expect(calls).to.not.include.members(['touchDevices', 'markOffline', 'getLastSent', 'getReported']);
      expect((await store.getDevice(API_KEY, 'phone', Date.now()))?.online).to.equal(true);
      expect([...(await store.getLastSent(API_KEY, 'phone')).values()]).to.deep.equal([{ name: 'speed', type: 'integer', value: '4' }]);
    });

    it('ignores a connection that is not verified', async () => {
      const tree = await start();
      clients.deviceVerified(verifiedConn([], null), connRef(tree));
      expect(deviceConns.size).to.equal(0);
      expect(clientActors.size).to.equal(0);
    });
  });

  describe('deviceReported', () => {
    const conn: VerifiedConn = { id: 'c-1', verified: { apiKey: API_KEY, deviceId: 'phone' }, write: () => true, device: (node) => ({ id: 'c-1', node }) as unknown as DeviceInfo };
    const connRef = (tree: Runtime) => (tree.find('/root/conn') as unknown as { ref: ActorRef<unknown> }).ref;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    /** Records the client actor's report turns (one getReported each) and its store writes, in order. */
    const spy = () => {
      const log: string[] = [];
      let turns = 0;
      const { getReported, setReported, setLabels } = store;
      store.getReported = (...a) => ((turns += 1), getReported.apply(store, a));
      store.setReported = (k, d, vars) => (log.push(`reported ${vars.map((v) => v.value).join(',')}`), setReported.call(store, k, d, vars));
      store.setLabels = (k, d, labels) => (log.push(`labels ${JSON.stringify(labels)}`), setLabels.call(store, k, d, labels));
      // The test's own reads go around the count: under load `eventually` polls more often.
      return { log, turns: () => turns, reported: (k: string, d: string) => getReported.call(store, k, d) };
    };

    it(`reads a socket streaming reports in turns ${REPORT_TURN_MS} ms apart at least, every report kept in order`, async () => {
      const tree = await start();
      clients.deviceVerified(conn, connRef(tree));
      await eventually(async () => expect((await store.getDevice(API_KEY, 'phone', Date.now()))?.online).to.equal(true));
      const s = spy();
      const t0 = performance.now();
      for (let i = 0; i < 150; i++) {
        clients.deviceReported(conn, [{ name: `v${i % 7}`, type: 'integer', value: String(i) }]);
        await sleep(1);
      }
      const elapsed = performance.now() - t0;
      await eventually(async () => expect((await s.reported(API_KEY, 'phone')).map((v) => v.value)).to.deep.equal(['147', '148', '149', '143', '144', '145', '146']));
      // One turn per report before (a turn a millisecond); now one per REPORT_TURN_MS, plus the first and the last.
      expect(s.turns()).to.be.at.most(Math.ceil(elapsed / REPORT_TURN_MS) + 3);
      expect(s.turns()).to.be.at.least(2);
    });

    it('keeps a report that waits for its turn ahead of the labels that follow it', async () => {
      const tree = await start();
      clients.deviceVerified(conn, connRef(tree));
      await eventually(async () => expect((await store.getDevice(API_KEY, 'phone', Date.now()))?.online).to.equal(true));
      const s = spy();
      const { setReported } = store;
      store.setReported = (k, d, vars) => {
        // During the first turn: the next report waits for its turn, and the labels must not overtake it.
        if (vars[0]?.value === '1') {
          clients.deviceReported(conn, [{ name: 'speed', type: 'integer', value: '2' }]);
          clients.deviceLabels(conn, { platform: 'ios' });
          clients.deviceReported(conn, [{ name: 'speed', type: 'integer', value: '3' }]);
        }
        return setReported.call(store, k, d, vars);
      };
      clients.deviceReported(conn, [{ name: 'speed', type: 'integer', value: '1' }]);
      await eventually(() => expect(s.log).to.deep.equal(['reported 1', 'reported 2', 'labels {"platform":"ios"}', 'reported 3']));
    });
  });

  describe('a burst of verifies of one key', () => {
    /** The tree with a dynamic supervisor of connection actors, one per socket, as tcp/conns is. */
    const startWithConns = async (n: number) => {
      rt = await Runtime.start(
        { id: 'root', start: supervisor({ strategy: 'one_for_one' }, [clients.registryChildSpec(), clientsChildSpec(), { id: 'conns', start: dynamicSupervisor() }]) },
        { logger: silent },
      );
      const conns = rt.dynamicSupervisor('/root/conns');
      const refs: Array<ActorRef<unknown>> = [];
      for (let i = 0; i < n; i++) refs.push(await conns.startChild({ id: `c-${i}`, restart: 'transient', start: worker<null, never>({ init: () => null }) }));
      return refs;
    };
    const socket = (i: number, deviceId: string, lines: string[][]): VerifiedConn => {
      lines[i] = [];
      return { id: `c-${i}`, verified: { apiKey: API_KEY, deviceId }, write: (line) => (lines[i] as string[]).push(line) > 0, device: (node) => ({ id: `c-${i}`, node }) as unknown as DeviceInfo };
    };
    /** Counts the store's reads of the key's overrides from here on (a verify reads them with the state's version). */
    const countReads = () => {
      const n = { listOverrides: 0 };
      const lo = store.listOverrides.bind(store);
      const rs = store.readState.bind(store);
      store.listOverrides = (k) => ((n.listOverrides += 1), lo(k));
      store.readState = (k) => ((n.listOverrides += 1), rs(k));
      return n;
    };

    it('sends every socket its overrides after OK and records each device, reading the store once per step for the sockets that verified together', async () => {
      const refs = await startWithConns(40);
      await clients.change(API_KEY, { name: 'speed', value: 3 });
      const reads = countReads();
      const lines: string[][] = [];
      refs.forEach((ref, i) => clients.deviceVerified(socket(i, `phone-${i}`, lines), ref));
      await eventually(() => expect(lines.every((l) => l.length === 1)).to.equal(true));
      const line = lines[0]?.[0];
      expect(line).to.match(new RegExp(`^v:${API_KEY}:`));
      expect(lines.map((l) => l[0])).to.deep.equal(refs.map(() => line));
      for (let i = 0; i < 40; i++) {
        expect([...(await store.getLastSent(API_KEY, `phone-${i}`)).values()]).to.deep.equal([{ name: 'speed', type: 'integer', value: '3' }]);
        expect((await store.getDevice(API_KEY, `phone-${i}`, Date.now()))?.online).to.equal(true);
      }
      // One socket at a time read the overrides 40 times; the actor's start (its resync) and the
      // verifies of the 40 sockets together read them a few times in all.
      expect(reads.listOverrides).to.be.at.most(4);
      expect(timelines.filter((t) => t.names.includes('speed'))).to.have.length(40);
    });

    it('recounts what waits for offline devices less often while verifies keep coming: not once a second for as long as they do', async function () {
      this.timeout(15_000);
      const refs = await startWithConns(45);
      const lines: string[][] = [];
      clients.deviceVerified(socket(0, 'phone-0', lines), refs[0] as ActorRef<unknown>);
      await eventually(() => expect(clientActors.whereis(API_KEY)).to.not.equal(undefined));
      let recounts = 0;
      const lod = store.listOfflineDevices.bind(store);
      store.listOfflineDevices = (k, r, n) => ((recounts += 1), lod(k, r, n));
      // A verify every 100 ms for 4.4 s: each asks for a recount; once a second would be 4 of them.
      for (let i = 1; i < 45; i++) {
        await new Promise((r) => setTimeout(r, 100));
        clients.deviceVerified(socket(i, `phone-${i}`, lines), refs[i] as ActorRef<unknown>);
      }
      expect(recounts).to.be.at.least(1);
      expect(recounts).to.be.at.most(2);
    });

    it('reads no last-sent for sockets with no override in effect, and leaves their last-sent empty', async () => {
      const refs = await startWithConns(11);
      const lines: string[][] = [];
      clients.deviceVerified(socket(0, 'first', lines), refs[0] as ActorRef<unknown>);
      await eventually(async () => expect((await store.getDevice(API_KEY, 'first', Date.now()))?.online).to.equal(true));
      // Sent before, by an override since cleared: after OK, last-sent is exactly what is in effect (nothing).
      for (let i = 1; i <= 10; i++) await store.setLastSent(API_KEY, `phone-${i}`, [{ name: 'old', type: 'integer', value: '1' }], true);
      let reads = 0;
      const gs = store.getSentAndReported.bind(store);
      store.getSentAndReported = (k, ids) => ((reads += 1), gs(k, ids));
      for (let i = 1; i <= 10; i++) clients.deviceVerified(socket(i, `phone-${i}`, lines), refs[i] as ActorRef<unknown>);
      await eventually(async () => {
        for (let i = 1; i <= 10; i++) expect(await store.getLastSent(API_KEY, `phone-${i}`), `phone-${i}`).to.deep.equal(new Map());
      });
      expect(reads).to.equal(0);
      expect(lines.flat()).to.deep.equal([]);
      expect(timelines).to.deep.equal([]);
    });

    it('gives two sockets of one device in one burst what verifying them one after the other gives: both the line, one timeline entry', async () => {
      const refs = await startWithConns(2);
      await clients.change(API_KEY, { name: 'speed', value: 3 });
      const lines: string[][] = [];
      clients.deviceVerified(socket(0, 'tablet', lines), refs[0] as ActorRef<unknown>);
      clients.deviceVerified(socket(1, 'tablet', lines), refs[1] as ActorRef<unknown>);
      await eventually(() => expect(lines.map((l) => l.length)).to.deep.equal([1, 1]));
      expect(lines[1]).to.deep.equal(lines[0]);
      expect(timelines).to.deep.equal([{ deviceId: 'tablet', names: ['speed'] }]);
      expect(events.filter((e) => (e as { type?: string }).type === 'outbox_flushed')).to.have.length(1);
      expect([...(await store.getLastSent(API_KEY, 'tablet')).values()]).to.deep.equal([{ name: 'speed', type: 'integer', value: '3' }]);
    });

    it('records a device whose socket is gone before its conn_up is read, and sends that socket nothing', async () => {
      const refs = await startWithConns(2);
      await clients.change(API_KEY, { name: 'speed', value: 3 });
      const lines: string[][] = [];
      clients.deviceVerified(socket(0, 'gone', lines), refs[0] as ActorRef<unknown>);
      clients.deviceVerified(socket(1, 'stays', lines), refs[1] as ActorRef<unknown>);
      await (rt as Runtime).dynamicSupervisor('/root/conns').terminateChild('c-0');
      await eventually(() => expect(lines[1]).to.have.length(1));
      expect(lines[0]).to.deep.equal([]);
      await eventually(async () => expect(await store.getDevice(API_KEY, 'gone', Date.now())).to.not.equal(null));
    });

    it(`takes the verifies of a key arriving one a millisecond in turns ${UP_TURN_MS} ms apart at least, each socket its line`, async () => {
      const n = 60;
      const refs = await startWithConns(n);
      await clients.change(API_KEY, { name: 'speed', value: 3 });
      let turns = 0;
      const touch = store.touchDevices.bind(store);
      store.touchDevices = (...a) => ((turns += 1), touch(...a));
      const lines: string[][] = [];
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        clients.deviceVerified(socket(i, `phone-${i}`, lines), refs[i] as ActorRef<unknown>);
        await new Promise((r) => setTimeout(r, 1));
      }
      const elapsed = performance.now() - t0;
      await eventually(() => expect(lines.every((l) => l.length === 1)).to.equal(true));
      // One turn per verify before; now one per UP_TURN_MS, plus the first two, and the last.
      expect(turns).to.be.at.most(Math.ceil(elapsed / UP_TURN_MS) + 4);
      expect(turns).to.be.at.least(2);
      for (let i = 0; i < n; i++) expect((await store.getDevice(API_KEY, `phone-${i}`, Date.now()))?.online, `phone-${i}`).to.equal(true);
    });

    it('keeps a socket’s events behind its conn_up that waits for its turn in a storm: a report, its labels, its end', async () => {
      const refs = await startWithConns(9);
      const lines: string[][] = [];
      const log: string[] = [];
      const { touchDevices, setReported, setLabels, markOffline } = store;
      store.touchDevices = (k, ds, ...rest) => (log.push(`touch ${ds.map((d) => d.deviceId).join(',')}`), touchDevices.call(store, k, ds, ...rest));
      store.setReported = (k, d, vars) => (log.push(`reported ${d}`), setReported.call(store, k, d, vars));
      store.setLabels = (k, d, labels) => (log.push(`labels ${d}`), setLabels.call(store, k, d, labels));
      store.markOffline = (k, d, at) => (log.push(`offline ${d}`), markOffline.call(store, k, d, at));
      const heldTimer = () => (clients as unknown as { heldUps: Map<string, { timer: unknown }> }).heldUps.get(API_KEY)?.timer ?? null;
      /** Two verifies, their turn taken, then `i`'s: the key's third verify within UP_TURN_MS, which waits for its turn. */
      const stormThen = async (i: number, id: string): Promise<VerifiedConn> => {
        // The three verifies at one moment of the turns' clock, however long the first turn takes here.
        frozenAt = performance.now();
        try {
          const touches = log.filter((l) => l.startsWith('touch')).length;
          clients.deviceVerified(socket(i + 1, `${id}-f1`, lines), refs[i + 1] as ActorRef<unknown>);
          clients.deviceVerified(socket(i + 2, `${id}-f2`, lines), refs[i + 2] as ActorRef<unknown>);
          while (log.filter((l) => l.startsWith('touch')).length === touches) await new Promise((r) => setImmediate(r));
          const s = socket(i, id, lines);
          clients.deviceVerified(s, refs[i] as ActorRef<unknown>);
          expect(heldTimer(), `${id} waits for its turn`).to.not.equal(null);
          return s;
        } finally {
          frozenAt = null;
        }
      };
      const reporter = await stormThen(0, 'reporter');
      clients.deviceReported(reporter, [{ name: 'speed', type: 'integer', value: '1' }]);
      await eventually(() => expect(log).to.include('reported reporter'));
      expect(log.indexOf('touch reporter')).to.be.within(0, log.indexOf('reported reporter'));
      await new Promise((r) => setTimeout(r, UP_TURN_MS * 2));
      const labelled = await stormThen(3, 'labelled');
      clients.deviceLabels(labelled, { platform: 'ios' });
      await eventually(() => expect(log).to.include('labels labelled'));
      expect(log.indexOf('touch labelled')).to.be.within(0, log.indexOf('labels labelled'));
      await new Promise((r) => setTimeout(r, UP_TURN_MS * 2));
      await stormThen(6, 'brief');
      await (rt as Runtime).dynamicSupervisor('/root/conns').terminateChild('c-6');
      await eventually(() => expect(log).to.include('offline brief'));
      expect(log.indexOf('touch brief')).to.be.within(0, log.indexOf('offline brief'));
      await eventually(async () => expect((await store.getDevice(API_KEY, 'brief', Date.now()))?.online).to.equal(false));
    });

    it('takes a lone verify and a device’s pair of sockets at once, without waiting for a turn', async () => {
      const refs = await startWithConns(2);
      const lines: string[][] = [];
      const heldTimer = () => (clients as unknown as { heldUps: Map<string, { timer: unknown }> }).heldUps.get(API_KEY)?.timer ?? null;
      clients.deviceVerified(socket(0, 'tablet', lines), refs[0] as ActorRef<unknown>);
      await eventually(async () => expect((await store.getDevice(API_KEY, 'tablet', Date.now()))?.online).to.equal(true));
      clients.deviceVerified(socket(1, 'tablet', lines), refs[1] as ActorRef<unknown>);
      expect(heldTimer()).to.equal(null);
    });

    it('after the key’s actor stopped, a new verify starts a new one that sends the overrides', async () => {
      const refs = await startWithConns(2);
      await clients.change(API_KEY, { name: 'speed', value: 3 });
      const lines: string[][] = [];
      clients.deviceVerified(socket(0, 'first', lines), refs[0] as ActorRef<unknown>);
      await eventually(() => expect(lines[0]).to.have.length(1));
      await (rt as Runtime).dynamicSupervisor('/root/conns').terminateChild('c-0');
      await eventually(() => expect(clientActors.whereis(API_KEY)).to.equal(undefined));
      clients.deviceVerified(socket(1, 'second', lines), refs[1] as ActorRef<unknown>);
      await eventually(() => expect(lines[1]).to.have.length(1));
    });
  });

  describe('a burst of changes', () => {
    it('reaches each device with the latest values, tells each change how many devices it reached, and records last-sent', async () => {
      // Two device connection actors, one per device.
      const conns = ['a', 'b'].map((id) => ({ id: `conn-${id}`, start: worker<null, never>({ init: () => null }) }));
      rt = await Runtime.start({ id: 'root', start: supervisor({ strategy: 'one_for_one' }, [clients.registryChildSpec(), clientsChildSpec(), ...conns]) }, { logger: silent });
      const tree = rt;
      const lines: Record<string, string[]> = { a: [], b: [] };
      for (const id of ['a', 'b'])
        clients.deviceVerified(
          { id: `c-${id}`, verified: { apiKey: API_KEY, deviceId: id }, write: (line) => (lines[id] as string[]).push(line) > 0, device: (node) => ({ id: `c-${id}`, node }) as unknown as DeviceInfo },
          (tree.find(`/root/conn-${id}`) as unknown as { ref: ActorRef<unknown> }).ref,
        );
      await eventually(async () => expect((await store.listDevices(API_KEY, 60_000, Date.now())).filter((d) => d.online)).to.have.length(2));
      const decode = (line: string) => JSON.parse(Buffer.from(line.trim().split(':')[2] ?? '', 'base64').toString('utf8')) as Array<{ name: string; value: string }>;
      // 40 changes at once: those for every device reach both, those for `b` reach `b` alone.
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => clients.variables.setVar(API_KEY, 'me@example.com', { name: `v${i % 10}`, value: i, target: i % 4 === 3 ? { devices: ['b'] } : undefined })),
      );
      results.forEach((r, i) => expect([r.delivered, r.pending, r.unconfirmed], `change ${i}`).to.deep.equal([i % 4 === 3 ? 1 : 2, 0, undefined]));
      // Each entry's delivered count is its own change's, though the changes were delivered in batches.
      const counts = new Map((await store.listHistory(API_KEY, { limit: 50 })).map((e) => [e.id, e.delivered]));
      results.forEach((r, i) => expect(counts.get(r.historyId), `entry ${i}`).to.equal(i % 4 === 3 ? 1 : 2));
      const got = (id: string) => {
        const m = new Map<string, string>();
        for (const l of lines[id] ?? []) for (const v of decode(l)) m.set(v.name, v.value);
        return m;
      };
      // Each variable's effective value (DESIGN.md §8: an override for the device beats one for all):
      // `a` never sees the changes for `b` alone, `b` keeps its own once it has one.
      const lastFor = (id: string, n: number) => {
        const of = (own: boolean) => [...Array(40).keys()].filter((i) => i % 10 === n && (i % 4 === 3) === own).at(-1);
        return String((id === 'b' ? of(true) : undefined) ?? of(false));
      };
      for (const id of ['a', 'b']) {
        const want = new Map(Array.from({ length: 10 }, (_, n) => [`v${n}`, lastFor(id, n)]));
        const sorted = (m: ReadonlyMap<string, string>) => [...m].sort(([x], [y]) => (x < y ? -1 : 1));
        expect(sorted(got(id)), id).to.deep.equal(sorted(want));
        expect(sorted(new Map([...(await store.getLastSent(API_KEY, id))].map(([k, v]) => [k, v.value]))), id).to.deep.equal(sorted(want));
        // Every variable it was sent is in its timeline.
        expect(new Set(timelines.filter((t) => t.deviceId === id).flatMap((t) => t.names))).to.deep.equal(new Set(want.keys()));
      }
    });
  });

  describe('the state a delivery pass sends from', () => {
    /** Counts the store's state reads (readState: a round trip on Redis) and lastState calls (what this node holds). */
    const countReads = () => {
      const n = { read: 0, last: 0 };
      const read = store.readState.bind(store);
      store.readState = (k: string) => {
        n.read += 1;
        return read(k);
      };
      store.lastState = (k: string) => {
        n.last += 1;
        return read(k);
      };
      return n;
    };
    /** Starts the tree with one verified device, `phone`, online; resolves with the lines written to it. */
    const phoneOnline = async (): Promise<string[]> => {
      const tree = await start();
      const lines: string[] = [];
      const conn: VerifiedConn = { id: 'c-1', verified: { apiKey: API_KEY, deviceId: 'phone' }, write: (line) => lines.push(line) > 0, device: (node) => ({ id: 'c-1', node }) as unknown as DeviceInfo };
      clients.deviceVerified(conn, (tree.find('/root/conn') as unknown as { ref: ActorRef<unknown> }).ref);
      await eventually(async () => expect((await store.listDevices(API_KEY, 60_000, Date.now())).filter((d) => d.online)).to.have.length(1));
      return lines;
    };
    const decode = (line: string) => (JSON.parse(Buffer.from(line.trim().split(':')[2] ?? '', 'base64').toString('utf8')) as Array<{ name: string; value: string }>).map((v) => `${v.name}=${v.value}`);

    it('is the one this node committed, with no read of the state, for changes made here', async () => {
      const lines = await phoneOnline();
      const n = countReads();
      for (let i = 1; i <= 5; i++) {
        const r = await clients.change(API_KEY, { name: `v${i}`, value: i });
        expect(r.delivered, `change ${i}`).to.equal(1);
        expect(decode(lines.at(-1) as string)).to.deep.equal([`v${i}=${i}`]);
      }
      expect(n.read, 'state reads').to.equal(0);
      expect(n.last, 'passes sending from the state held').to.be.at.least(5);
      const together = await Promise.all([clients.change(API_KEY, { name: 'v1', value: 10 }), clients.change(API_KEY, { name: 'v6', value: 6 })]);
      expect(together.map((r) => r.delivered)).to.deep.equal([1, 1]);
      expect(n.read, 'state reads').to.equal(0);
      expect((await store.getLastSent(API_KEY, 'phone')).get('v1')?.value).to.equal('10');
    });

    it('is read from the store for a change whose message names no version, or one it does not hold, or a malformed one', async () => {
      const lines = await phoneOnline();
      // Another node's commit, this node's store never saw: the message as an older node sends it, then
      // with a version this store does not hold yet, then hostile versions. Each pass reads the state
      // and sends what is in effect.
      const versions: unknown[] = [undefined, 1_000_000, 'x', -1, 1.5, Number.MAX_SAFE_INTEGER + 2, null];
      for (const [i, stateVersion] of versions.entries()) {
        const state = await store.readState(API_KEY);
        const ops = [{ kind: 'override.set' as const, override: { name: `w${i}`, target: { all: true as const }, value: String(i), type: 'integer', setBy: 'other@example.com', setAt: Date.now() } }];
        const r = await store.commitMany(API_KEY, [{ ops, draft: { at: Date.now(), actor: 'other@example.com', action: 'override.set', target: { all: true }, changes: [], strategies: [], delivered: 0 }, by: 'other@example.com' }], state.stateVersion, { maxEntries: 100, maxAgeMs: 3_600_000 });
        expect(r.ok).to.equal(true);
        const n = countReads();
        const change: Record<string, unknown> = { historyId: null, actor: 'other@example.com', action: 'override.set', changes: [{ name: `w${i}`, target: { all: true }, value: String(i), setAt: null }] };
        if (stateVersion !== undefined) change.stateVersion = stateVersion;
        await pubsub.publish(`${API_KEY}:vars:callback`, change);
        await eventually(() => expect(decode(lines.at(-1) as string), `version ${String(stateVersion)}`).to.deep.equal([`w${i}=${i}`]));
        expect(n.read, `state reads, version ${String(stateVersion)}`).to.equal(1);
      }
    });
  });

  describe('each change its own line', () => {
    const decode = (line: string) => (JSON.parse(Buffer.from(line.trim().split(':')[2] ?? '', 'base64').toString('utf8')) as Array<{ name: string; value: string }>).map((v) => `${v.name}=${v.value}`);
    /** The tree with one verified device, `phone`, online; resolves with the lines written to it. */
    const phoneOnline = async (): Promise<{ tree: Runtime; lines: string[] }> => {
      const tree = await start();
      const lines: string[] = [];
      const conn: VerifiedConn = { id: 'c-1', verified: { apiKey: API_KEY, deviceId: 'phone' }, write: (line) => lines.push(line) > 0, device: (node) => ({ id: 'c-1', node }) as unknown as DeviceInfo };
      clients.deviceVerified(conn, (tree.find('/root/conn') as unknown as { ref: ActorRef<unknown> }).ref);
      await eventually(async () => expect((await store.listDevices(API_KEY, 60_000, Date.now())).filter((d) => d.online)).to.have.length(1));
      return { tree, lines };
    };
    /** Commits `name` = `value` for every device straight to the store, as another node would; the change message for it. */
    const commitSet = async (name: string, value: string, requestId?: string) => {
      const state = await store.readState(API_KEY);
      const setAt = Date.now();
      const ops = [{ kind: 'override.set' as const, override: { name, target: { all: true as const }, value, type: 'integer', setBy: 'other@example.com', setAt } }];
      const r = await store.commitMany(API_KEY, [{ ops, draft: { at: setAt, actor: 'other@example.com', action: 'override.set', target: { all: true }, changes: [], strategies: [], delivered: 0 }, by: 'other@example.com' }], state.stateVersion, { maxEntries: 100, maxAgeMs: 3_600_000 });
      if (!r.ok) throw new Error('commit refused');
      return { historyId: null, actor: 'other@example.com', action: 'override.set', changes: [{ name, target: { all: true }, value, setAt }], stateVersion: r.stateVersion, ...(requestId ? { requestId, replyTo: 'test:acks' } : {}) };
    };
    const acks: Array<{ requestId: string; delivered: number }> = [];
    beforeEach(async () => {
      acks.length = 0;
      await pubsub.subscribe('test:acks', (m) => acks.push(m as { requestId: string; delivered: number }));
    });

    it('a pass sends its own batch’s values, not those of the batch committed behind it before the pass ran (memory store)', async () => {
      const { lines } = await phoneOnline();
      // Both committed before the first one's message is taken: the store is at the second's version.
      const first = await commitSet('x', '1', 'r1');
      const second = await commitSet('x', '2', 'r2');
      await pubsub.publish(`${API_KEY}:vars:callback`, first);
      await eventually(() => expect(acks.map((a) => a.requestId)).to.deep.equal(['r1']));
      await pubsub.publish(`${API_KEY}:vars:callback`, second);
      await eventually(() => expect(acks.map((a) => a.requestId)).to.deep.equal(['r1', 'r2']));
      expect(lines.map(decode)).to.deep.equal([['x=1'], ['x=2']]);
      expect(acks.map((a) => a.delivered)).to.deep.equal([1, 1]);
      expect((await store.getLastSent(API_KEY, 'phone')).get('x')?.value).to.equal('2');
    });

    it('never sends a value older than one a line already carried: a report answered from the newer state first', async () => {
      const { lines } = await phoneOnline();
      const first = await commitSet('x', '1', 'r1');
      await commitSet('x', '2');
      // The device reports its own value before the first change's message is taken: it is sent the
      // override in effect now, x=2. The first change's pass must not send it x=1 after that.
      const conn = { id: 'c-1', verified: { apiKey: API_KEY, deviceId: 'phone' }, write: (line: string) => lines.push(line) > 0, device: (node: string) => ({ id: 'c-1', node }) as unknown as DeviceInfo };
      clients.deviceReported(conn, [{ name: 'x', type: 'integer', value: '0' }]);
      await eventually(() => expect(lines.map(decode)).to.deep.equal([['x=2']]));
      await pubsub.publish(`${API_KEY}:vars:callback`, first);
      await eventually(() => expect(acks.map((a) => a.requestId)).to.deep.equal(['r1']));
      expect(lines.map(decode)).to.deep.equal([['x=2']]);
      // It never got x=1, and holds x=2 (the next change's): not reached, as before.
      expect(acks.map((a) => a.delivered)).to.deep.equal([0]);
    });

    it('a device whose conn_up is still behind the change is sent its line by the pass, before the change is answered', async () => {
      const { lines } = await phoneOnline();
      // A second device verified, its conn_up not yet taken (the key's actor busy, or the storm turn):
      // registered, not up, by a connection actor of its own.
      const tablet: string[] = [];
      const other = await (rt as Runtime).dynamicSupervisor('/root/clients').startChild({ id: 'tablet-conn', restart: 'temporary', start: worker<null, never>({ init: () => null }) });
      deviceConns.register(
        API_KEY,
        other,
        { connId: 'c-2', deviceId: 'tablet', deviceKey: 'tablet', generated: false, address: null, up: false, labels: () => ({}), write: (line) => tablet.push(line) > 0, device: () => ({ id: 'c-2' }) as unknown as DeviceInfo },
      );
      const one = await clients.change(API_KEY, { name: 'x', value: 1 });
      // Counted as reached only because it got the line: the next change of the variable may go now.
      expect(one.delivered).to.equal(2);
      expect(tablet.map(decode)).to.deep.equal([['x=1']]);
      const two = await clients.change(API_KEY, { name: 'x', value: 2 });
      expect(two.delivered).to.equal(2);
      expect(tablet.map(decode)).to.deep.equal([['x=1'], ['x=2']]);
      expect(lines.map(decode)).to.deep.equal([['x=1'], ['x=2']]);
      expect(deviceConns.get(API_KEY, 'c-2')?.up).to.equal(true);
      expect([...(await store.getLastSent(API_KEY, 'tablet')).values()]).to.deep.equal([{ name: 'x', type: 'integer', value: '2' }]);
    });

    it('the conn_up that follows a socket a pass took up sends it nothing more, and still records its device', async () => {
      await phoneOnline();
      const tablet: string[] = [];
      const other = await (rt as Runtime).dynamicSupervisor('/root/clients').startChild({ id: 'tablet-conn', restart: 'temporary', start: worker<null, never>({ init: () => null }) });
      deviceConns.register(API_KEY, other, { connId: 'c-2', deviceId: 'tablet', deviceKey: 'tablet', generated: false, address: null, up: false, labels: () => ({}), write: (line) => tablet.push(line) > 0, device: () => ({ id: 'c-2' }) as unknown as DeviceInfo });
      expect((await clients.change(API_KEY, { name: 'x', value: 1 })).delivered).to.equal(2);
      expect(tablet.map(decode)).to.deep.equal([['x=1']]);
      // Its conn_up, as ClientActors.deviceVerified sends it, arrives now.
      (clientActors.whereis(API_KEY)?.ref as ActorRef<ClientMsg>).send({ kind: 'conn_up', resume: false, take: () => [{ connId: 'c-2', deviceKey: 'tablet', generated: false, address: null }] });
      await eventually(async () => expect((await store.getDevice(API_KEY, 'tablet', Date.now()))?.online).to.equal(true));
      await clients.change(API_KEY, { name: 'y', value: 3 });
      expect(tablet.map(decode)).to.deep.equal([['x=1'], ['y=3']]);
    });
  });

  describe('a stream of changes to a device with many overrides', () => {
    it('reads of its last-sent only the variables that can be pending once it knows it, and sends exactly what a whole read would', async () => {
      const tree = await start();
      for (let i = 0; i < 200; i++) await clients.change(API_KEY, { name: `v${i}`, value: 0 });
      const reads: Array<number | null> = [];
      const original = store.getSentAndReported.bind(store);
      store.getSentAndReported = (k: string, ids: readonly string[], names?: readonly string[]) => {
        reads.push(names ? names.length : null);
        return original(k, ids, names);
      };
      const lines: string[] = [];
      const conn: VerifiedConn = { id: 'c-1', verified: { apiKey: API_KEY, deviceId: 'phone' }, write: (line) => lines.push(line) > 0, device: (node) => ({ id: 'c-1', node }) as unknown as DeviceInfo };
      clients.deviceVerified(conn, (tree.find('/root/conn') as unknown as { ref: ActorRef<unknown> }).ref);
      await eventually(() => expect(lines).to.have.length(1));
      const decode = (line: string) => (JSON.parse(Buffer.from(line.trim().split(':')[2] ?? '', 'base64').toString('utf8')) as Array<{ name: string; value: string }>).map((v) => `${v.name}=${v.value}`);
      expect(decode(lines[0] as string)).to.have.length(200);
      // One change at a time: each pass reads the one variable, and the line carries it alone.
      for (let n = 1; n <= 5; n++) {
        const r = await clients.change(API_KEY, { name: `v${n * 7}`, value: n });
        expect(r.delivered, `change ${n}`).to.equal(1);
        expect(decode(lines.at(-1) as string)).to.deep.equal([`v${n * 7}=${n}`]);
      }
      expect(reads.slice(-4)).to.deep.equal([1, 1, 1, 1]);
      // A report of the device: its last-sent is read whole once, then in part again.
      clients.deviceReported(conn, [{ name: 'v3', type: 'integer', value: '9' }]);
      await eventually(() => expect(lines).to.have.length(7));
      expect(decode(lines.at(-1) as string)).to.deep.equal(['v3=0']);
      await clients.change(API_KEY, { name: 'v4', value: 44 });
      await clients.change(API_KEY, { name: 'v5', value: 55 });
      expect(reads.slice(-2)).to.deep.equal([null, 1]);
      // A cleared override is a restore to the game's own value: read whole, sent as pending would.
      await clients.variables.clearVar(API_KEY, 'me@example.com', 'v3', undefined);
      expect(decode(lines.at(-1) as string)).to.deep.equal(['v3=9']);
      expect(reads.at(-1)).to.equal(null);
      // Several changes at once: one pass, one line with each (in the list's order), the last-sent right.
      await Promise.all([clients.change(API_KEY, { name: 'v150', value: 1 }), clients.change(API_KEY, { name: 'v20', value: 2 }), clients.change(API_KEY, { name: 'v150', value: 3 })]);
      const seen = new Map(lines.slice(-3).flatMap((l) => decode(l)).map((x) => x.split('=') as [string, string]));
      expect(seen.get('v150')).to.equal('3');
      expect(seen.get('v20')).to.equal('2');
      const last = await store.getLastSent(API_KEY, 'phone');
      expect(last.get('v150')?.value).to.equal('3');
      expect(last.get('v5')?.value).to.equal('55');
      expect(last.get('v3')?.value).to.equal('9');
      expect(last.size).to.equal(200);
    });
  });

  describe('change', () => {
    it('is the variable-change flow: an override for every device with its history entry, <apiKey>:vs left to the devices', async () => {
      await start();
      const r = await clients.change(API_KEY, { name: 'speed', value: 4 }, 'me@example.com');
      expect(r).to.deep.include({ var: { name: 'speed', type: 'integer', value: '4' }, target: { all: true }, delivered: 0, pending: 0, buffered: true });
      expect((await store.listOverrides(API_KEY)).map((o) => [o.name, o.value, o.setBy])).to.deep.equal([['speed', '4', 'me@example.com']]);
      expect((await store.listHistory(API_KEY, { limit: 5 }))[0]).to.include({ id: r.historyId, actor: 'me@example.com', action: 'override.set' });
      expect(await store.getVars(API_KEY)).to.deep.equal([]);
    });
  });
});

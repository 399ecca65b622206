/**
 * GET /metrics and GET /readyz on a real daemon: the Prometheus text is well-formed with every name
 * under observerio_, and every metric the issue lists moves when real traffic flows over TCP; /readyz
 * follows a real Redis going away.
 */
import { expect } from 'chai';
import { WebSocket } from 'ws';
import { channels } from '../../src/pubsub/pubsub.js';
import { ADMIN_TOKEN, AdminClient, connectionOf, device, metric, scrape } from '../helpers/admin.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/eventually.js';
import { startRedisServer, type RedisServer } from '../helpers/processes.js';
import { b64, LineClient } from '../helpers/tcp-client.js';

describe('GET /metrics', () => {
  let daemon: Daemon;
  let apiKey: string;
  const clients: LineClient[] = [];

  before(async () => {
    daemon = await startDaemon({ overrides: { adminToken: ADMIN_TOKEN }, clientIdleMs: 60_000 });
    apiKey = await daemon.register();
  });
  after(async () => {
    for (const c of clients.splice(0)) c.close();
    await daemon.stop();
  });

  it('answers Prometheus text, every metric named observerio_*, with HELP and TYPE', async () => {
    const res = await fetch(`${daemon.http}/metrics`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1] as string);
    expect(types.length).to.be.greaterThan(20);
    expect(types.filter((n) => !n.startsWith('observerio_'))).to.deep.equal([]);
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      expect(line, line).to.match(/^observerio_[a-zA-Z0-9_]*(\{.*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/);
    }
    for (const name of [
      'observerio_tcp_connections',
      'observerio_lines_received_total',
      'observerio_protocol_errors_total',
      'observerio_vars_written_total',
      'observerio_logs_indexed_total',
      'observerio_log_index_batch_size',
      'observerio_log_index_batch_seconds',
      'observerio_outbox_vars',
      'observerio_ws_clients',
      'observerio_pubsub_messages_published_total',
      'observerio_actor_restarts_total',
      'observerio_event_loop_lag_seconds',
      'observerio_backend_up',
    ]) {
      expect(types, name).to.include(name);
    }
    expect(metric(text, 'observerio_event_loop_lag_seconds')).to.be.a('number').and.to.be.at.least(0);
    expect(metric(text, 'observerio_ws_clients')).to.equal(0);
  });

  it("names prom-client's default metrics with one prefix: observerio_process_*, observerio_nodejs_*", async () => {
    const text = await (await fetch(`${daemon.http}/metrics`)).text();
    const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1] as string);
    for (const name of ['observerio_process_cpu_user_seconds_total', 'observerio_process_start_time_seconds', 'observerio_process_resident_memory_bytes', 'observerio_nodejs_heap_size_used_bytes', 'observerio_nodejs_eventloop_lag_seconds']) {
      expect(types, name).to.include(name);
    }
    expect(types.filter((n) => /observerio_process_(process|nodejs)_|observerio_observerio_/.test(n))).to.deep.equal([]);
    expect(text).to.not.contain('process_process_');
  });

  it('moves with real traffic: connections, lines, errors, vars, logs, index batches, publishes, outbox, restarts', async () => {
    const before = await scrape(daemon);
    const delta = (text: string, name: string, labels: Record<string, string> = {}): number => (metric(text, name, labels) ?? 0) - (metric(before, name, labels) ?? 0);
    expect(metric(before, 'observerio_backend_up', { backend: 'store', kind: 'memory' })).to.equal(1);
    expect(metric(before, 'observerio_backend_up', { backend: 'pubsub', kind: 'local' })).to.equal(1);
    expect(metric(before, 'observerio_backend_up', { backend: 'logs', kind: 'memory' })).to.equal(1);

    const dev = await device(daemon, apiKey, 'metered');
    const stranger = await LineClient.open(daemon.tcpPort);
    clients.push(dev, stranger);
    dev.line(`i:${apiKey}:${b64([{ name: 'a', type: 'integer', value: '1' }, { name: 'b', type: 'string', value: 'x' }])}`);
    dev.line(`l:${apiKey}:${b64([{ message: 'one' }, { message: 'two', level: 'warn' }, { message: 'three' }])}`);
    dev.line('hello there');
    dev.line(`i:${apiKey}:%%%`);
    stranger.line(`i:${apiKey}:${b64([{ name: 'a', type: 'integer', value: '2' }])}`);
    expect(await dev.waitLines(3)).to.satisfy((l: string[]) => l[1]!.startsWith('e:unknown_command:') && l[2]!.startsWith('e:bad_base64:'));
    expect((await stranger.waitLines(1))[0]).to.match(/^e:not_verified:/);

    const during = await eventually(async () => {
      const t = await scrape(daemon);
      expect(delta(t, 'observerio_logs_indexed_total')).to.equal(3);
      return t;
    });
    expect(metric(during, 'observerio_tcp_connections')).to.equal(2);
    expect(delta(during, 'observerio_tcp_connections_accepted_total')).to.equal(2);
    expect(delta(during, 'observerio_lines_received_total', { command: 'verify' })).to.equal(1);
    expect(delta(during, 'observerio_lines_received_total', { command: 'vars' })).to.equal(2);
    expect(delta(during, 'observerio_lines_received_total', { command: 'logs' })).to.equal(1);
    expect(delta(during, 'observerio_lines_received_total', { command: 'invalid' })).to.equal(2);
    expect(delta(during, 'observerio_protocol_errors_total', { code: 'unknown_command' })).to.equal(1);
    expect(delta(during, 'observerio_protocol_errors_total', { code: 'bad_base64' })).to.equal(1);
    expect(delta(during, 'observerio_protocol_errors_total', { code: 'not_verified' })).to.equal(1);
    expect(delta(during, 'observerio_vars_written_total')).to.equal(2);
    expect(delta(during, 'observerio_logs_received_total')).to.equal(3);
    expect(delta(during, 'observerio_log_index_batch_size_sum')).to.equal(3);
    expect(delta(during, 'observerio_log_index_batch_size_count')).to.be.at.least(1);
    expect(delta(during, 'observerio_log_index_batch_seconds_count')).to.equal(delta(during, 'observerio_log_index_batch_size_count'));
    expect(delta(during, 'observerio_log_index_batch_seconds_sum')).to.be.greaterThan(0);
    expect(delta(during, 'observerio_tcp_bytes_received_total')).to.be.greaterThan(100);
    expect(delta(during, 'observerio_pubsub_messages_published_total', { kind: 'vars' })).to.equal(1);
    expect(delta(during, 'observerio_pubsub_messages_published_total', { kind: 'logs' })).to.equal(1);
    expect(delta(during, 'observerio_pubsub_messages_published_total', { kind: 'device' })).to.equal(1);
    expect(metric(during, 'observerio_http_requests_total', { route: 'metrics', status: '200' })).to.be.at.least(2);

    // A change while the device is away waits in the outbox, and the gauge shows it.
    dev.close();
    await eventually(async () => expect(metric(await scrape(daemon), 'observerio_tcp_connections')).to.equal(1));
    await eventually(() => expect(daemon.ctx.deviceConns.countKey(apiKey)).to.equal(0));
    await daemon.ctx.clients.change(apiKey, { name: 'a', type: 'integer', value: '9' });
    await daemon.ctx.clients.change(apiKey, { name: 'c', type: 'string', value: 'z' });
    await eventually(async () => expect(metric(await scrape(daemon), 'observerio_outbox_vars')).to.equal(2));
    const back = await device(daemon, apiKey, 'metered');
    clients.push(back);
    expect(await back.next()).to.match(new RegExp(`^v:${apiKey}:`));
    await eventually(async () => expect(metric(await scrape(daemon), 'observerio_outbox_vars')).to.equal(0));

    // A kill is a crash and a restart under the connection's supervisor.
    await new AdminClient(daemon).kill200(connectionOf(daemon, 'metered').path);
    const after = await scrape(daemon);
    expect(delta(after, 'observerio_actor_restarts_total', { supervisor: '/observerio/tcp/conns' })).to.equal(1);
    expect(delta(after, 'observerio_actor_crashes_total', { supervisor: '/observerio/tcp/conns' })).to.equal(1);
    expect(delta(after, 'observerio_actor_restarts_total', { supervisor: '/observerio' })).to.equal(0);
    expect(delta(after, 'observerio_var_changes_sent_total')).to.equal(1);
  });
});

describe('observerio_logs_dropped_total', () => {
  it('catches up with the logs the batcher dropped when it holds more than logs.maxPendingDocs', async () => {
    const daemon = await startDaemon({ overrides: { logs: { maxPendingDocs: 10, batchSize: 1000, flushDelayMs: 200 } } });
    try {
      const apiKey = await daemon.register();
      const dev = await device(daemon, apiKey);
      dev.line(`l:${apiKey}:${b64(Array.from({ length: 25 }, (_, i) => ({ message: `m${i}` })))}`);
      await eventually(async () => {
        const text = await scrape(daemon);
        expect(metric(text, 'observerio_logs_received_total')).to.equal(25);
        expect(metric(text, 'observerio_logs_dropped_total')).to.equal(15);
        expect(metric(text, 'observerio_logs_indexed_total')).to.equal(10);
      });
      // Read again: the counter does not count the same drops twice.
      expect(metric(await scrape(daemon), 'observerio_logs_dropped_total')).to.equal(15);
      dev.close();
    } finally {
      await daemon.stop();
    }
  });
});

describe('observerio_ws_clients', () => {
  it('counts the open dashboard WebSockets', async () => {
    const daemon = await startDaemon();
    const sockets: WebSocket[] = [];
    try {
      const email = `ws-${Date.now()}@example.com`;
      await daemon.register(email, 'correct horse battery');
      const res = await fetch(`${daemon.http}/api/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'correct horse battery' }) });
      expect(res.status).to.equal(200);
      const { token } = (await res.json()) as { token: string };
      for (let i = 0; i < 2; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${daemon.httpPort}/ws?token=${encodeURIComponent(token)}`);
        sockets.push(ws);
        await new Promise((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('error', reject);
        });
      }
      await eventually(async () => expect(metric(await scrape(daemon), 'observerio_ws_clients')).to.equal(2));
      sockets.pop()!.close();
      await eventually(async () => expect(metric(await scrape(daemon), 'observerio_ws_clients')).to.equal(1));
    } finally {
      for (const ws of sockets) ws.terminate();
      await daemon.stop();
    }
  });
});

describe('GET /readyz', () => {
  it('answers 200 while the embedded backends answer', async () => {
    const daemon = await startDaemon();
    try {
      const res = await fetch(`${daemon.http}/readyz`);
      expect(res.status).to.equal(200);
      const body = (await res.json()) as { ready: boolean; backends: Record<string, { ok: boolean; kind: string }> };
      expect(body.ready).to.equal(true);
      expect(Object.keys(body.backends).sort()).to.deep.equal(['logs', 'pubsub', 'store']);
      expect(Object.values(body.backends).every((b) => b.ok)).to.equal(true);
    } finally {
      await daemon.stop();
    }
  });

  describe('on a Redis that goes away', () => {
    let redis: RedisServer;
    let daemon: Daemon;
    before(async () => {
      redis = await startRedisServer();
      // A probe a second: backend_up drops within one, and the crash after three failed probes comes after the test.
      daemon = await startDaemon({ overrides: { redisUrl: redis.url }, probeMs: 1000 });
    });
    after(async () => {
      await daemon.stop();
      await redis.stop();
    });

    it('is ready while Redis answers, then 503 naming the backends that fail, and backend_up drops to 0', async () => {
      const ready = await fetch(`${daemon.http}/readyz`);
      expect(ready.status).to.equal(200);
      expect(metric(await scrape(daemon), 'observerio_backend_up', { backend: 'store', kind: 'redis' })).to.equal(1);

      await redis.stop();
      const body = await eventually(async () => {
        const res = await fetch(`${daemon.http}/readyz`);
        expect(res.status).to.equal(503);
        return (await res.json()) as { ready: boolean; backends: Record<string, { ok: boolean; kind: string; detail?: string }> };
      });
      expect(body.ready).to.equal(false);
      expect(body.backends.store).to.include({ ok: false, kind: 'redis' });
      expect(body.backends.pubsub).to.include({ ok: false, kind: 'redis' });
      expect(body.backends.logs).to.include({ ok: true, kind: 'memory' });
      // /healthz still answers: the daemon is up, only degraded.
      const health = await fetch(`${daemon.http}/healthz`);
      expect(health.status).to.equal(200);
      expect(((await health.json()) as { status: string }).status).to.equal('degraded');
      await eventually(async () => expect(metric(await scrape(daemon), 'observerio_backend_up', { backend: 'store', kind: 'redis' })).to.equal(0));
    });
  });
});

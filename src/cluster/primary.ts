/**
 * The primary of `observerio serve --workers N`: holds no listener and no backend of its own, only N
 * worker processes (node:cluster) that each run the whole daemon on shared ports, and supervises them
 * like an OTP supervisor: a worker that dies is restarted in its slot (at once after a stable run,
 * then with doubling delays), the others keep serving, and too many restarts in a short time stop
 * everything with exit 1 rather than spin. SIGTERM/SIGINT stops every worker gracefully, exit 0.
 *
 * Ports: the TCP port is shared by node:cluster (the primary accepts and hands sockets round-robin to
 * the workers; Node 20's net has no reusePort: measured EADDRINUSE). uWebSockets.js sets SO_REUSEPORT
 * on Linux (measured: two processes listen on one port and the kernel spreads connections), so each
 * worker binds the HTTP port itself. A port configured as 0 is chosen here once, so all workers agree.
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer, type Server } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { RestartBackoff, RestartIntensity } from '../otp/index.js';
import { ASK_TIMEOUT_MS, isMessage, TAG, WORKER_ENV, type Answer, type ToPrimary, type ToWorker, type WorkerInfo, type WorkerRole, type WorkerStatus } from './protocol.js';

/**
 * Worker restarts: like the root supervisor's, generous enough for a worker killed now and then, strict
 * enough that a worker that cannot start (bad Redis, a bug at boot) ends the daemon within seconds.
 */
export const WORKER_RESTARTS = { intensity: 5, periodMs: 60_000, backoff: { initialMs: 500, maxMs: 10_000, resetAfterMs: 30_000 } } as const;

interface Slot {
  id: number;
  worker: Worker | null;
  status: WorkerStatus;
  restarts: number;
  startedAt: number | null;
  nodeId: string | null;
  lastExit: WorkerInfo['lastExit'];
  backoff: RestartBackoff;
  intensity: RestartIntensity;
  timer: NodeJS.Timeout | null;
}

/** Binds a free port on `host` and keeps it until `release`; held together so two picks differ. */
function holdFreePort(host: string): Promise<{ port: number; release: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const srv: Server = createServer();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      resolve({ port, release: () => new Promise<void>((r) => srv.close(() => r())) });
    });
  });
}

async function fixedPorts(config: Config): Promise<{ tcpPort: number; httpPort: number }> {
  const held = await Promise.all([config.tcpPort === 0 ? holdFreePort(config.host) : null, config.httpPort === 0 ? holdFreePort(config.host) : null]);
  await Promise.all(held.map((h) => h?.release()));
  return { tcpPort: held[0]?.port ?? config.tcpPort, httpPort: held[1]?.port ?? config.httpPort };
}

export interface PrimaryOptions {
  config: Config;
  logger: Logger;
  /** Called once with the exit code when the primary is done (the CLI exits with it). */
  exit: (code: number) => void;
}

export async function runPrimary(opts: PrimaryOptions): Promise<void> {
  const { config, logger } = opts;
  const count = config.workers;
  const ports = await fixedPorts(config);
  const slots: Slot[] = Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    worker: null,
    status: 'starting',
    restarts: 0,
    startedAt: null,
    nodeId: null,
    lastExit: null,
    backoff: new RestartBackoff(WORKER_RESTARTS.backoff, Date.now),
    intensity: new RestartIntensity(WORKER_RESTARTS.intensity, WORKER_RESTARTS.periodMs),
    timer: null,
  }));
  let booted = false;
  let stopping: { code: number } | null = null;
  let nextRid = 1;
  const relayed = new Map<number, { from: Worker; rid: number; timer: NodeJS.Timeout }>();

  const info = (): WorkerInfo[] =>
    slots.map((s) => ({
      id: s.id,
      pid: s.worker?.process.pid ?? null,
      status: s.status,
      restarts: s.restarts,
      startedAt: s.startedAt === null ? null : new Date(s.startedAt).toISOString(),
      nodeId: s.nodeId,
      lastExit: s.lastExit,
    }));

  const tell = (w: Worker, m: ToWorker): void => {
    if (w.isConnected()) w.send(m);
  };

  const answer = (w: Worker, rid: number, a: Answer): void => tell(w, { tag: TAG, t: 'answer', rid, a });

  const onMessage = (slot: Slot, w: Worker, m: ToPrimary): void => {
    if (m.t === 'ready') {
      slot.status = 'ready';
      slot.nodeId = m.nodeId;
      logger.info({ worker: slot.id, pid: w.process.pid, node: m.nodeId }, `worker ${slot.id} ready`);
      if (!booted && slots.every((s) => s.status === 'ready')) {
        booted = true;
        logger.info(
          { workers: count, pids: slots.map((s) => s.worker?.process.pid), tcp: `${config.host}:${ports.tcpPort}`, http: `http://${config.host}:${ports.httpPort}/`, primary: process.pid },
          `observerio ready: ${count} workers, SDK on ${config.host}:${ports.tcpPort}, dashboard on http://${config.host}:${ports.httpPort}/`,
        );
      }
    } else if (m.t === 'ask') {
      if (m.q.what === 'workers') return answer(w, m.rid, { ok: true, value: { self: slot.id, primaryPid: process.pid, workers: info() } });
      const target = slots[m.q.worker - 1];
      if (!target) return answer(w, m.rid, { ok: false, code: 'not_found', message: `no worker ${m.q.worker}; this daemon runs workers 1-${count}` });
      if (!target.worker || target.status !== 'ready') return answer(w, m.rid, { ok: false, code: 'unavailable', message: `worker ${target.id} is ${target.status}; retry in a moment` });
      const rid = nextRid++;
      const timer = setTimeout(() => {
        relayed.delete(rid);
        answer(w, m.rid, { ok: false, code: 'unavailable', message: `worker ${target.id} did not answer within ${ASK_TIMEOUT_MS} ms` });
      }, ASK_TIMEOUT_MS);
      relayed.set(rid, { from: w, rid: m.rid, timer });
      tell(target.worker, { tag: TAG, t: 'ask', rid, q: m.q.q });
    } else if (m.t === 'answer') {
      const r = relayed.get(m.rid);
      if (!r) return;
      relayed.delete(m.rid);
      clearTimeout(r.timer);
      answer(r.from, r.rid, m.a);
    }
  };

  const fork = (slot: Slot): void => {
    slot.timer = null;
    const role: WorkerRole = { id: slot.id, count, ...ports };
    const w = cluster.fork({ [WORKER_ENV]: JSON.stringify(role) });
    slot.worker = w;
    slot.status = 'starting';
    slot.startedAt = Date.now();
    slot.nodeId = null;
    logger.info({ worker: slot.id, pid: w.process.pid }, `worker ${slot.id} started`);
    w.on('message', (m: unknown) => {
      if (isMessage<ToPrimary>(m)) onMessage(slot, w, m);
    });
    // A failed fork also ends in 'exit'; the error itself is only logged.
    w.on('error', (err) => logger.error({ err, worker: slot.id }, 'worker channel error'));
    w.once('exit', (code, signal) => onExit(slot, w, code, signal));
  };

  const onExit = (slot: Slot, w: Worker, code: number | null, signal: string | null): void => {
    if (slot.worker !== w) return;
    const pid = w.process.pid ?? 0;
    slot.worker = null;
    slot.nodeId = null;
    slot.lastExit = { pid, code, signal, at: new Date().toISOString() };
    for (const [rid, r] of relayed) {
      if (r.from === w) {
        clearTimeout(r.timer);
        relayed.delete(rid);
      }
    }
    if (stopping) {
      slot.status = 'stopped';
      if (code !== 0) stopping.code = 1;
      logger.info({ worker: slot.id, pid, code, signal }, `worker ${slot.id} stopped`);
      return finishIfDone();
    }
    if (!booted) {
      logger.fatal({ worker: slot.id, pid, code, signal }, `worker ${slot.id} exited while the daemon was starting; stopping`);
      return stopAll(1);
    }
    if (!slot.intensity.add()) {
      logger.fatal({ worker: slot.id, pid, code, signal, intensity: WORKER_RESTARTS.intensity, periodMs: WORKER_RESTARTS.periodMs }, `worker ${slot.id} died too often; stopping the daemon`);
      return stopAll(1);
    }
    const delayMs = slot.backoff.next();
    slot.restarts += 1;
    slot.status = 'restarting';
    logger.error({ worker: slot.id, pid, code, signal, restartInMs: delayMs, restarts: slot.restarts }, `worker ${slot.id} (pid ${pid}) died; restarting it in ${delayMs} ms`);
    slot.timer = setTimeout(() => fork(slot), delayMs);
  };

  let killTimer: NodeJS.Timeout | null = null;
  const finishIfDone = (): void => {
    if (!stopping || slots.some((s) => s.worker !== null)) return;
    if (killTimer) clearTimeout(killTimer);
    logger.info({ code: stopping.code }, 'stopped');
    logger.flush?.();
    opts.exit(stopping.code);
  };

  const stopAll = (code: number): void => {
    if (stopping) return;
    stopping = { code };
    for (const s of slots) {
      if (s.timer) clearTimeout(s.timer);
      s.timer = null;
      if (s.worker) {
        s.status = 'stopping';
        tell(s.worker, { tag: TAG, t: 'stop' });
      } else s.status = 'stopped';
    }
    // Each worker bounds its own shutdown by shutdownTimeoutMs; this catches one that hangs anyway.
    killTimer = setTimeout(() => {
      for (const s of slots) {
        if (!s.worker) continue;
        logger.error({ worker: s.id, pid: s.worker.process.pid }, `worker ${s.id} did not stop in time; killing it`);
        if (stopping) stopping.code = 1;
        s.worker.process.kill('SIGKILL');
      }
    }, config.shutdownTimeoutMs + 1000);
    finishIfDone();
  };

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: killing the workers and exiting now');
      for (const s of slots) s.worker?.process.kill('SIGKILL');
      opts.exit(130);
      return;
    }
    logger.info({ signal, workers: count }, 'shutting down');
    stopAll(0);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  logger.info({ workers: count, primary: process.pid, tcpPort: ports.tcpPort, httpPort: ports.httpPort }, `starting ${count} workers`);
  for (const s of slots) fork(s);
}

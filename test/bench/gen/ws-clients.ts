/**
 * Fan-out receivers: many dashboard WebSockets (minimal client, see lib/raw-ws.ts) that count the
 * `vars` frames and the variable updates inside them, from `go` until `stop`.
 */
import { RawWs } from '../lib/raw-ws.js';
import { runWorker } from '../lib/worker.js';

export interface WsClientsConfig {
  port: number;
  path: string;
  count: number;
  localAddress?: string;
}

export interface WsClientsResult {
  frames: number;
  updates: number;
  /** Date.now() of the first and last `vars` frame (the orchestrator compares processes by wall clock). */
  firstAt: number | null;
  lastAt: number | null;
  closed: number;
  closeCodes: number[];
  /** Sockets that never got their `ready` frame. */
  notReady: number;
}

const VARS = Buffer.from('{"type":"vars"');
const READY = Buffer.from('{"type":"ready"');
const NAME = Buffer.from('"name":');

runWorker<WsClientsConfig, WsClientsResult>(async (cfg, ctl) => {
  let counting = false;
  let frames = 0;
  let updates = 0;
  let firstAt: number | null = null;
  let lastAt: number | null = null;
  let readies = 0;
  let closed = 0;
  const closeCodes: number[] = [];
  let wakeReady: (() => void) | null = null;
  const onFrame = (p: Buffer): void => {
    if (p.subarray(0, VARS.length).equals(VARS)) {
      if (!counting) return;
      frames += 1;
      for (let at = p.indexOf(NAME); at >= 0; at = p.indexOf(NAME, at + NAME.length)) updates += 1;
      const now = Date.now();
      firstAt ??= now;
      lastAt = now;
    } else if (p.subarray(0, READY.length).equals(READY)) {
      readies += 1;
      wakeReady?.();
    }
  };
  const onClose = (code: number | null): void => {
    closed += 1;
    if (code !== null && closeCodes.length < 10) closeCodes.push(code);
  };
  const sockets: RawWs[] = [];
  // A few upgrades at a time: each is an authenticated request the server checks.
  for (let i = 0; i < cfg.count; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, cfg.count - i) }, () => RawWs.open({ port: cfg.port, path: cfg.path, localAddress: cfg.localAddress, onFrame, onClose })));
    sockets.push(...batch);
  }
  // Every socket should get its `ready` frame; a straggler or two must not sink the run (counted).
  const deadline = Date.now() + 15_000;
  while (readies < cfg.count) {
    if (Date.now() > deadline) {
      if (readies >= cfg.count * 0.99) break;
      throw new Error(`only ${readies} of ${cfg.count} WebSockets got their ready frame`);
    }
    await new Promise<void>((r) => {
      wakeReady = r;
      setTimeout(r, 100);
    });
  }
  await ctl.ready();
  counting = true;
  await ctl.stopped;
  counting = false;
  const result = { frames, updates, firstAt, lastAt, closed, closeCodes, notReady: cfg.count - readies };
  for (const s of sockets) s.close();
  return result;
});

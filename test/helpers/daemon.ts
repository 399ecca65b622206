/**
 * Starts a real observerio daemon in this process on free ports: embedded backends by default, or the
 * run's private Redis and Meilisearch. Tests talk to it over real TCP, HTTP and WebSockets.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { startApp, type App, type AppOptions } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { sharedMeili, sharedRedis, tempDir } from './processes.js';

export interface DaemonOptions extends AppOptions {
  redis?: boolean;
  meili?: boolean;
  overrides?: Record<string, unknown>;
  /** Reuse a data dir (restart tests). */
  dataDir?: string;
}

export interface Daemon extends App {
  http: string;
  dataDir: string;
  /** Registers a user over HTTP and returns its API key. */
  register(email?: string, password?: string): Promise<string>;
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  const overrides: Record<string, unknown> = { tcpPort: 0, httpPort: 0, logLevel: 'silent', ...opts.overrides };
  const dir = opts.dataDir ?? tempDir('observerio-daemon-').path;
  overrides.dataDir = dir;
  if (opts.redis) overrides.redisUrl = (await sharedRedis()).url;
  if (opts.meili) {
    const m = await sharedMeili();
    overrides.meiliUrl = m.url;
    overrides.meiliMasterKey = m.masterKey;
    overrides.logs = { ...(overrides.logs as object), indexName: `logs-${randomBytes(4).toString('hex')}` };
  }
  const config = loadConfig({ env: { NODE_ENV: 'test' }, overrides });
  const app = await startApp(config, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), ...opts });
  const http = `http://127.0.0.1:${app.httpPort}`;
  return Object.assign(Object.create(app) as App, {
    http,
    dataDir: dir,
    async register(email = `u${randomBytes(6).toString('hex')}@example.com`, password = 'correct horse battery') {
      const res = await fetch(`${http}/api/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
      if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { apiKey: string }).apiKey;
    },
  }) as Daemon;
}

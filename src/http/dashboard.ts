/**
 * Serves the built dashboard (dist/dashboard/, made by scripts/build-dashboard.mjs) at `/`. Files are
 * read into memory when the HTTP worker starts and served from a fixed list, so no request path ever
 * reaches the file system (nothing to traverse) and anything not on the list is the usual 404.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { route, type RouteModule } from './context.js';

/** From src/http/ (tsx) and dist/http/ (built) alike, the repository's dist/dashboard/. */
export const DASHBOARD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'dashboard');

const FILES: ReadonlyArray<{ path: string; file: string; type: string; optional?: boolean }> = [
  { path: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { path: '/index.html', file: 'index.html', type: 'text/html; charset=utf-8' },
  { path: '/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { path: '/styles.css', file: 'styles.css', type: 'text/css; charset=utf-8' },
  { path: '/app.js.map', file: 'app.js.map', type: 'application/json; charset=utf-8', optional: true },
];

// The page loads only its own script and stylesheet and talks only to this daemon (REST and /ws);
// inline style attributes are Preact's, the data: image is the inline favicon.
const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>observerio</title>
<p>The dashboard has not been built. Run <code>make run</code> (or <code>npm run build</code>) and reload.</p>`;

export function dashboardRoutesFrom(dir: string): RouteModule {
  return (app, ctx) => {
    const cache = new Map<string, Buffer>();
    const read = (file: string): Buffer | null => {
      if (!cache.has(file)) {
        try {
          cache.set(file, readFileSync(join(dir, file)));
        } catch {
          return null;
        }
      }
      return cache.get(file) ?? null;
    };
    const missing = FILES.filter((f) => !f.optional && read(f.file) === null).map((f) => f.file);
    if (missing.length > 0) ctx.logger.warn({ dir, missing: [...new Set(missing)] }, 'dashboard files missing; / answers 503 until the dashboard is built');

    for (const f of FILES) {
      const body = read(f.file);
      if (body === null && f.optional) continue;
      app.get(
        f.path,
        route(ctx, 'dashboard', (reply) => {
          if (body === null || missing.length > 0) reply.text(503, NOT_BUILT, 'text/html; charset=utf-8');
          else reply.send(200, body, { 'Content-Type': f.type, ...(f.file === 'index.html' ? PAGE_HEADERS : {}) });
        }),
      );
    }
  };
}

export const dashboardRoutes: RouteModule = dashboardRoutesFrom(DASHBOARD_DIR);

/**
 * GET /metrics: the daemon's Prometheus metrics in the text exposition format, for a scraper. Open
 * like /healthz: it carries counts and durations, never API keys, variables or log text. Under
 * `serve --workers N` a scrape reaches any one worker, so it answers for all of them, summed by
 * prom-client's AggregatorRegistry (counters and gauges summed, as prom-client's cluster mode does);
 * `?worker=<n>` answers for worker n alone.
 */
import { AggregatorRegistry } from 'prom-client';
import { ObserverioError } from '../errors.js';
import { takeWorker } from './admin.js';
import { route, type RouteModule } from './context.js';

export const metricsRoutes: RouteModule = (app, ctx) => {
  app.get(
    '/metrics',
    route(ctx, 'metrics', async (reply, info) => {
      const { worker, query } = takeWorker(info.query, ctx.workers?.count ?? 1);
      if (query !== '') throw new ObserverioError('bad_request', 'GET /metrics takes only worker=<n>');
      const workers = ctx.workers;
      if (!workers || worker === workers.self) return reply.text(200, await ctx.metrics.render(), ctx.metrics.contentType);
      if (worker !== null) return reply.text(200, await workers.metricsText(worker), ctx.metrics.contentType);
      const { metrics, missing } = await workers.allMetrics();
      if (metrics.length === 0) throw new ObserverioError('unavailable', 'no worker answered; retry in a moment');
      const body = await AggregatorRegistry.aggregate(metrics).metrics();
      // A worker that is restarting is left out of the sum rather than failing the scrape; it says so.
      const note = missing.length > 0 ? `# observerio: workers ${missing.join(', ')} of ${workers.count} did not answer; their figures are not in these sums\n` : '';
      reply.text(200, note + body, ctx.metrics.contentType);
    }),
  );
};

/** Builds the node's per-tenant limits from configuration, counting refusals on the daemon's /metrics. */
import type { LimitsConfig } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import { LimitRefusals } from './limit-metrics.js';
import { TenantLimits } from './tenant-limits.js';

export { TenantLimits, type LimitName, type VarsVerdict } from './tenant-limits.js';

export function tenantLimits(cfg: LimitsConfig, store: Pick<Store, 'getVars'>, metrics: Metrics): TenantLimits {
  const refusals = new LimitRefusals(metrics.registry, cfg.metricsMaxKeys);
  return new TenantLimits(cfg, {
    varNames: async (apiKey) => (await store.getVars(apiKey)).map((v) => v.name),
    onRefused: (limit, apiKey, count) => refusals.add(limit, apiKey, count),
  });
}

/**
 * The per-key refusal counter on /metrics: `observerio_limit_refusals_total{limit,apiKey}`. Per key is
 * what operators need to find the tenant at fault, but a label value per key would let a crowd of
 * keys blow up the series count, so only the first `maxKeys` keys that hit a limit get their own
 * series; refusals of later keys are counted under `apiKey="_other"`, and address refusals (no key
 * yet) under `apiKey="_none"`. Neither can be a real key: keys are 12 characters of [A-Za-z0-9].
 */
import { Counter, type Registry } from 'prom-client';
import type { LimitName } from './tenant-limits.js';

export const OTHER_KEYS = '_other';
export const NO_KEY = '_none';

export class LimitRefusals {
  readonly counter: Counter<'limit' | 'apiKey'>;
  private readonly labelled = new Set<string>();

  constructor(
    registry: Registry,
    private readonly maxKeys: number,
  ) {
    this.counter = new Counter({
      name: 'observerio_limit_refusals_total',
      help: 'Refused by a per-tenant limit, by limit and API key: variables (vars_per_key, new_vars_per_minute), connections (connections_per_key, connections_per_address) or log entries (logs_per_second)',
      labelNames: ['limit', 'apiKey'] as const,
      registers: [registry],
    });
  }

  add(limit: LimitName, apiKey: string | null, count: number): void {
    this.counter.inc({ limit, apiKey: this.label(apiKey) }, count);
  }

  private label(apiKey: string | null): string {
    if (apiKey === null) return NO_KEY;
    if (this.labelled.has(apiKey)) return apiKey;
    if (this.labelled.size >= this.maxKeys) return OTHER_KEYS;
    this.labelled.add(apiKey);
    return apiKey;
  }
}

/**
 * Schemas of the §8 data as the embedded store journals and snapshots it (memory-store.ts): what a
 * replayed record or a loaded snapshot must look like before it may change the state. Label objects
 * are rebuilt with Object.fromEntries (own properties only); their keys start with a letter, so a
 * `__proto__` key never reaches them (labels.ts).
 */
import { z } from 'zod';
import type { HistoryEntry } from '../variables/history.js';
import type { Labels } from '../variables/labels.js';
import type { Override } from '../variables/overrides.js';
import type { Op } from '../variables/strategies.js';
import type { StrategyRecord } from '../variables/store-contract.js';

export const varSchema = z.object({ name: z.string(), type: z.string(), value: z.string() }).strict();

export const labelsSchema = z.record(z.string(), z.string()).transform((l): Labels => Object.freeze(Object.fromEntries(Object.entries(l))));

export const targetSchema = z.union([
  z.object({ all: z.literal(true) }).strict(),
  z.object({ devices: z.array(z.string()) }).strict(),
  z.object({ labels: labelsSchema }).strict(),
]);

const overrideValueSchema = z
  .object({ value: z.string(), type: z.string(), setBy: z.string(), setAt: z.number(), strategy: z.string().optional() })
  .strict();

export const overrideSchema = z
  .object({ name: z.string(), type: z.string(), value: z.string(), target: targetSchema, setBy: z.string(), setAt: z.number(), strategy: z.string().optional() })
  .strict()
  .transform((o): Override => {
    const p: Override = { name: o.name, type: o.type, value: o.value, target: o.target, setBy: o.setBy, setAt: o.setAt };
    return o.strategy === undefined ? p : { ...p, strategy: o.strategy };
  });

export const strategyRecordSchema = z
  .object({ name: z.string(), vars: z.array(varSchema), version: z.number().int(), updatedAt: z.number(), updatedBy: z.string() })
  .strict()
  .transform((s): StrategyRecord => s);

export const opSchema = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('override.set'), override: overrideSchema }).strict(),
    z.object({ kind: z.literal('override.clear'), name: z.string(), target: targetSchema }).strict(),
    z.object({ kind: z.literal('strategy.put'), strategy: z.object({ name: z.string(), vars: z.array(varSchema) }).strict() }).strict(),
    z.object({ kind: z.literal('strategy.delete'), name: z.string() }).strict(),
  ])
  .transform((op): Op => op);

const changeSchema = z.object({ name: z.string(), target: targetSchema, before: overrideValueSchema.nullable(), after: overrideValueSchema.nullable() }).strict();
const strategyChangeSchema = z.object({ name: z.string(), before: z.array(varSchema).nullable(), after: z.array(varSchema).nullable() }).strict();
const actionSchema = z.enum(['override.set', 'override.clear', 'strategy.create', 'strategy.update', 'strategy.delete', 'strategy.apply', 'revert', 'rollback']);

export const entrySchema = z
  .object({
    id: z.string(),
    at: z.number(),
    actor: z.string(),
    action: actionSchema,
    target: targetSchema.nullable(),
    changes: z.array(changeSchema),
    strategies: z.array(strategyChangeSchema),
    delivered: z.number(),
    revertOf: z.string().optional(),
    rollbackTo: z.string().optional(),
  })
  .strict()
  .transform((e): HistoryEntry => {
    const { revertOf, rollbackTo, ...rest } = e;
    const out: HistoryEntry = rest;
    if (revertOf !== undefined) Object.assign(out, { revertOf });
    if (rollbackTo !== undefined) Object.assign(out, { rollbackTo });
    return out;
  });

/** One API key's §8 data in the snapshot (version 3). */
export const keyVariablesSchema = z
  .object({
    devices: z.array(z.tuple([z.string(), z.object({ lastAddress: z.string().nullable(), generated: z.boolean() }).strict()])),
    labels: z.array(z.tuple([z.string(), labelsSchema])),
    seen: z.array(z.tuple([z.string(), z.number()])),
    presence: z.array(z.tuple([z.string(), z.number()])),
    reported: z.array(z.tuple([z.string(), z.array(varSchema)])),
    sent: z.array(z.tuple([z.string(), z.array(varSchema)])),
    overrides: z.array(overrideSchema),
    strategies: z.array(strategyRecordSchema),
    stateVersion: z.number().int().min(0),
    history: z.array(entrySchema),
    lastId: z.string().nullable(),
  })
  .strict();

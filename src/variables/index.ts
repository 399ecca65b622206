/**
 * The variables domain core (DESIGN.md §8), pure: targets and labels, overrides and the rule that
 * they win, derived pending, strategies, history, and the storage contract the stores implement.
 */
export * from './actions.js';
export * from './history.js';
export * from './labels.js';
export * from './override-list.js';
export * from './overrides.js';
export * from './pending.js';
export * from './strategies.js';
export * from './target.js';
export * from './var-rules.js';
export type * from './store-contract.js';

/**
 * OTP on nact: supervisors, dynamic supervisors, restart intensity and backoff, a registry and introspection.
 * The rest of the code uses the runtime only through this module and never touches nact.
 */
export { worker, supervisor, dynamicSupervisor, normalizeSpec, ChildSpecError, DEFAULTS } from './child-spec.js';
export type { ChildSpec, Startable, WorkerDef, SupervisorDef, DynamicSupervisorDef, NormalizedBackoff } from './child-spec.js';
export { Runtime, NoSuchActor } from './runtime.js';
export type { RuntimeOptions } from './runtime.js';
export { DynamicSupervisorCell, MaxChildrenError } from './dynamic-supervisor.js';
export { SupervisorCell, StartError } from './supervisor.js';
export { WorkerCell, Killed, CallTimeout } from './worker-cell.js';
export { Registry, AlreadyRegistered } from './registry.js';
export { ChildHandle, WorkerHandle, ChildNotRunning, dynamicSupervisorHandle, workerHandle } from './handle.js';
export type { Attachable } from './handle.js';
export type { Entry } from './registry.js';
export { RestartIntensity } from './restart-intensity.js';
export { RestartBackoff } from './restart-backoff.js';
export type { Cell } from './cell.js';
export type * from './types.js';
export { Turns } from './turns.js';

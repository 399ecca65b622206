/**
 * The dashboard's REST API (sessions, vars, logs, devices) as one route module; it also subscribes
 * this node to its delivery-ack channel at startup, so the first variable change does not wait for it.
 */
import type { RouteModule } from '../context.js';
import { deviceRoutes } from './devices.js';
import { logRoutes } from './logs.js';
import { sessionRoutes } from './sessions.js';
import { varRoutes } from './vars.js';

export const apiRoutes: RouteModule = (app, ctx) => {
  for (const m of [sessionRoutes, varRoutes, logRoutes, deviceRoutes]) m(app, ctx);
  // A failure is logged and retried by the first change (VarChanges.start is idempotent).
  ctx.varChanges
    .start()
    .catch(() => undefined);
};

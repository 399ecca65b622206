/**
 * The dashboard's REST API (sessions, vars, logs, devices) as one route module.
 */
import type { RouteModule } from '../context.js';
import { deviceRoutes } from './devices.js';
import { logRoutes } from './logs.js';
import { sessionRoutes } from './sessions.js';
import { varRoutes } from './vars.js';

export const apiRoutes: RouteModule = (app, ctx) => {
  for (const m of [sessionRoutes, varRoutes, logRoutes, deviceRoutes]) m(app, ctx);
};

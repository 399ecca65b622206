/**
 * The dashboard's REST API (sessions, vars and overrides, logs, devices, strategies, history, connect info) as one route module.
 */
import type { RouteModule } from '../context.js';
import { connectInfoRoutes } from './connect-info.js';
import { deviceRoutes } from './devices.js';
import { logRoutes } from './logs.js';
import { sessionRoutes } from './sessions.js';
import { historyRoutes } from './history.js';
import { strategyRoutes } from './strategies.js';
import { varRoutes } from './vars.js';

export const apiRoutes: RouteModule = (app, ctx) => {
  for (const m of [sessionRoutes, varRoutes, logRoutes, deviceRoutes, strategyRoutes, historyRoutes, connectInfoRoutes]) m(app, ctx);
};

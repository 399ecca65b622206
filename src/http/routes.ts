/**
 * Every route module of the HTTP worker, in registration order (uWS matches the first registered
 * route among equally specific ones; the catch-all 404 comes last, in server.ts).
 */
import type { RouteModule } from './context.js';
import { healthRoutes } from './health.js';
import { adminRoutes } from './admin.js';
import { metricsRoutes } from './metrics-route.js';
import { userRoutes } from './api/users.js';
import { apiRoutes } from './api/index.js';
import { wsRoutes } from './ws.js';
import { sdkSocketRoutes } from './sdk-socket.js';
import { dashboardRoutes } from './dashboard.js';

export const routeModules: RouteModule[] = [healthRoutes, adminRoutes, metricsRoutes, userRoutes, apiRoutes, wsRoutes, sdkSocketRoutes, dashboardRoutes];

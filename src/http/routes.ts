/**
 * Every route module of the HTTP worker, in registration order (uWS matches the first registered
 * route among equally specific ones; the catch-all 404 comes last, in server.ts).
 */
import type { RouteModule } from './context.js';
import { healthRoutes } from './health.js';
import { userRoutes } from './api/users.js';

export const routeModules: RouteModule[] = [healthRoutes, userRoutes];

/** Mocha global fixtures: the shared Redis and Meilisearch started on first use stop after the run. */
import { stopSharedServers } from './processes.js';

process.env.NODE_ENV ??= 'test';

export async function mochaGlobalTeardown(): Promise<void> {
  await stopSharedServers();
}

// Placeholder until the dashboard lands: the build must not fail when src/dashboard is empty.
import { existsSync, mkdirSync } from 'node:fs';
if (!existsSync('src/dashboard/main.tsx')) {
  mkdirSync('dist/dashboard', { recursive: true });
}

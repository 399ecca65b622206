#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `make build`.
import('../dist/cli/main.js').catch((err) => {
  process.stderr.write(`observerio: cannot start (${err && err.message}); run 'make build' first\n`);
  process.exit(1);
});

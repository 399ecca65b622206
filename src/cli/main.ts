/**
 * The `observerio` command line: `serve` runs the daemon; the other commands talk to a running
 * daemon (program.ts). Bad use exits 2 with a message; failures exit 1.
 */
import { runProgram } from './program.js';

export { buildProgram } from './program.js';

const code = await runProgram(process.argv);
// exitCode rather than exit(): `serve` and `simulate` keep the process up until they are done.
if (code !== 0 || process.exitCode === undefined) process.exitCode = code;

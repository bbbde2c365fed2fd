/** Entry point of dist/gpbackup_s3_plugin. */
// The plugin runs inside the postgres server's environment: a stray
// NODE_TLS_REJECT_UNAUTHORIZED=0 there must not turn off certificate checks.
delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;

import { runCli } from './protocol/cli.js';
import { runtimeVariablesRefusal } from './protocol/runtime-env.js';
import { log } from './log/gplog.js';

const refusal = runtimeVariablesRefusal(process.env, typeof process.send === 'function');
if (refusal) {
  log.fatal(refusal);
  process.exit(1);
}

let finished = false;
// A command whose work the runtime stopped waiting for (no timer, socket or read left pending, so
// the event loop ran dry before it settled) must not exit 0 as if every byte had moved.
process.on('beforeExit', () => {
  if (!finished) {
    log.fatal(`${process.argv[2] ?? 'gpbackup_s3_plugin'}: internal error: the command stopped before it finished`);
    process.exit(1);
  }
});

runCli(process.argv.slice(2)).then(
  code => {
    finished = true;
    log.close();
    // Exit now: idle keep-alive sockets must not hold the process open.
    process.exit(code);
  },
  () => process.exit(1),
);

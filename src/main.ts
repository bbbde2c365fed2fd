/** Entry point of dist/gpbackup_s3_plugin. */
// The plugin runs inside the postgres server's environment: a stray
// NODE_TLS_REJECT_UNAUTHORIZED=0 there must not turn off certificate checks.
delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;

import { runCli } from './protocol/cli.js';
import { log } from './log/gplog.js';

runCli(process.argv.slice(2)).then(
  code => {
    log.close();
    // Exit now: idle keep-alive sockets must not hold the process open.
    process.exit(code);
  },
  () => process.exit(1),
);

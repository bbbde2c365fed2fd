/** Entry point of dist/gpbackup_s3_plugin. */
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

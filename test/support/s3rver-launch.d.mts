import type { ChildProcess } from 'node:child_process';

export function launchS3rver(
  directory: string,
  opts?: { timeoutMs?: number; port?: number },
): { child: ChildProcess; port: Promise<number>; tail: () => string };

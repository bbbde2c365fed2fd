/**
 * The reference tools of ../shared/e2e/reference.tar.xz (the Go plugin and gofakes3), unpacked
 * once per test process into a temp dir of its own. Where ../shared/e2e is absent, tests using
 * them skip with one line, and fail under CI=true (CI copies shared/ beside the checkout).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from './plugin.js';

/** Where the prebuilt Greenplum, gpbackup and reference tools are: ../shared/e2e beside the checkout, or GPB_E2E_SHARED. */
export const SHARED_E2E = process.env.GPB_E2E_SHARED ?? join(PROJECT_ROOT, '..', 'shared', 'e2e');
export const REFERENCE_TARBALL = join(SHARED_E2E, 'reference.tar.xz');

export interface ReferenceTools {
  goPlugin: string;
  gofakes3: string;
  cleanup(): void;
}

/** The unpacked tools, or a reason to skip (an Error under CI=true, where they must be there). */
export function referenceTools(): ReferenceTools | string {
  if (!existsSync(REFERENCE_TARBALL)) {
    const why = `${REFERENCE_TARBALL} is absent (the Go plugin and gofakes3)`;
    if (process.env.CI === 'true') throw new Error(`${why}, and CI must run these tests`);
    return why;
  }
  const dir = mkdtempSync(join(tmpdir(), 'gpb-reference-'));
  execFileSync('tar', ['-xJf', REFERENCE_TARBALL, '-C', dir]);
  return {
    goPlugin: join(dir, 'reference', 'gpbackup_s3_plugin'),
    gofakes3: join(dir, 'reference', 'gofakes3'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

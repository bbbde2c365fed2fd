export const RGW_ACCESS_KEY: string;
export const RGW_SECRET_KEY: string;
export const RGW_PACKAGES: string[];
export const RGW_INSTALL_HINT: string;
export function rgwInstalled(): boolean;
export function rgwVersion(): string;
export interface RgwInstance {
  endpoint: string;
  port: number;
  dir: string;
  accessKey: string;
  secretKey: string;
  pids: number[];
  stop(): Promise<void>;
}
export function startRgw(opts?: { timeoutMs?: number; accessKey?: string; secretKey?: string }): Promise<RgwInstance>;
export function stopRgwDir(dir: string): Promise<void>;
export function killRgwDirSync(dir: string): void;

export function startFastS3(port?: number): Promise<{ port: number; close(): Promise<void> }>;

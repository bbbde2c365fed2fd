export function patternBytes(size: number, seed?: number): Buffer;

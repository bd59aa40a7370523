import type { AppendMeta, StorageAdapter } from "./index.js";

/** What opening the file found. */
export interface FileRecovery {
  /** Entries in the log, damaged ones included. */
  records: number;
  /** Bytes of a torn last record cut off (an append interrupted by a crash). */
  truncatedBytes: number;
  /** Bytes of a torn tail a read-only open left in place. */
  ignoredTailBytes: number;
  /** Damaged records: they keep their place and reading them fails. */
  problems: Array<{ index: number | null; offset: number; detail: string }>;
}

/** The ledger in an append-only file, in the Rust host's format. */
export interface FileStorage extends StorageAdapter {
  /** The path as given; a relative one is resolved against the working directory when `fileStorage` was called. */
  readonly path: string;
  /** Opens now (otherwise the first call opens) and reports recovery. */
  open(): Promise<FileRecovery>;
  append(bytes: Uint8Array, meta?: AppendMeta): Promise<number>;
  get(index: number): Promise<Uint8Array | null>;
  getRange(start: number, end: number): Promise<Uint8Array[]>;
  length(): Promise<number>;
  find(entryHash: string): Promise<number | null>;
  /** Waits for pending appends, closes the file and releases the lock. */
  close(): Promise<void>;
}

/** Node only: the ledger in the file at `path` (created if missing). */
export declare function fileStorage(path: string, options?: { readOnly?: boolean }): FileStorage;

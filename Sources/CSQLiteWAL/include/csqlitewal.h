#ifndef CLOUDTAP_CSQLITEWAL_H
#define CLOUDTAP_CSQLITEWAL_H

/// The name of the VFS registered by cloudtap_register_wal_vfs().
#define CLOUDTAP_WAL_VFS "cloudtap-wal"

/// Registers (once; later calls do nothing) a VFS named "cloudtap-wal" over SQLite's default
/// one. It differs in one thing: a connection's writes to its write-ahead log that follow each
/// other in the file are gathered in memory and reach the file as one write, before the log is
/// synced, read, sized, truncated or closed, and before any shared-memory barrier or lock
/// (which is how a commit is published to other connections). A commit's frames — a header and
/// a page each, two writes a page — become one write. The first call, before SQLite
/// initializes, also turns SQLite's memory statistics off (they put a mutex on every
/// allocation). Returns SQLITE_OK or SQLite's error.
int cloudtap_register_wal_vfs(void);

#endif

// CloudTap's write-gathering VFS for SQLite's write-ahead log; see csqlitewal.h.
//
// SQLite writes each WAL frame as two calls (the 24-byte frame header, then the page), so a
// commit of n pages costs 2n system calls. This shim keeps a connection's consecutive WAL
// writes in a buffer and hands them to the underlying VFS as one write (in pieces of at most
// 124 KiB) before anything could observe the file: the WAL's own xSync, xRead, xFileSize,
// xTruncate, xClose, xUnlock and xFileControl, and the shared-memory calls on the connection's
// database file (xShmMap, xShmLock, xShmBarrier, xShmUnmap) through which a commit is
// published to other connections — the wal-index header is written around a barrier, after
// the frames. Every other file passes straight through.

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include "csqlitewal.h"

#define GATHER_LIMIT (8 * 1024 * 1024)

typedef struct GatherFile GatherFile;
struct GatherFile {
    sqlite3_file base;
    sqlite3_file *real;           // the underlying VFS's file, allocated just after this struct
    int gathering;                // a WAL file: consecutive writes are gathered
    // A WAL file and its connection's database file, linked both ways: the wal-index lives in
    // shared memory reached through the database file, so a commit is published by shared-
    // memory calls on the database file, and the WAL's gathered writes must reach the file
    // before them.
    GatherFile *database;
    GatherFile *wal;
    unsigned char *buffer;
    sqlite3_int64 start;          // file offset of buffer[0]
    int length;
    int capacity;
};

static sqlite3_vfs gather_vfs;
static sqlite3_vfs *root_vfs;

// The unix VFS writes at most 128 KiB - 1 bytes a call (it never gets more from SQLite), so
// the gathered bytes go down in pieces of 124 KiB.
#define WRITE_PIECE (124 * 1024)

static int flush(GatherFile *f) {
    int rc = SQLITE_OK;
    for (int done = 0; done < f->length && rc == SQLITE_OK; done += WRITE_PIECE) {
        int piece = f->length - done < WRITE_PIECE ? f->length - done : WRITE_PIECE;
        rc = f->real->pMethods->xWrite(f->real, f->buffer + done, piece, f->start + done);
    }
    f->length = 0;
    return rc;
}

static int x_close(sqlite3_file *file) {
    GatherFile *f = (GatherFile *)file;
    int rc = flush(f);
    if (f->database != NULL && f->database->wal == f) f->database->wal = NULL;
    if (f->wal != NULL && f->wal->database == f) f->wal->database = NULL;
    int rc2 = f->real->pMethods->xClose(f->real);
    free(f->buffer);
    f->buffer = NULL;
    f->capacity = 0;
    return rc != SQLITE_OK ? rc : rc2;
}

/// The calls below that hand pending WAL writes down first (`flush` for this file, `flush_wal`
/// for the WAL when the call is on its database's shared memory), then forward the call.
#define FORWARD_AFTER(flusher, file, call)          \
    do {                                            \
        GatherFile *f = (GatherFile *)(file);       \
        int rc = flusher(f);                        \
        if (rc != SQLITE_OK) return rc;             \
        return f->real->pMethods->call;             \
    } while (0)

static int x_read(sqlite3_file *file, void *out, int amount, sqlite3_int64 offset) { FORWARD_AFTER(flush, file, xRead(f->real, out, amount, offset)); }

static int x_write(sqlite3_file *file, const void *data, int amount, sqlite3_int64 offset) {
    GatherFile *f = (GatherFile *)file;
    if (!f->gathering) return f->real->pMethods->xWrite(f->real, data, amount, offset);
    if (f->length > 0 && offset == f->start + f->length && f->length + amount <= GATHER_LIMIT) {
        if (f->length + amount > f->capacity) {
            int grown = f->capacity * 2;
            while (grown < f->length + amount) grown *= 2;
            if (grown > GATHER_LIMIT) grown = GATHER_LIMIT;
            unsigned char *bigger = realloc(f->buffer, (size_t)grown);
            if (bigger == NULL) {
                int rc = flush(f);
                if (rc != SQLITE_OK) return rc;
                return f->real->pMethods->xWrite(f->real, data, amount, offset);
            }
            f->buffer = bigger;
            f->capacity = grown;
        }
        memcpy(f->buffer + f->length, data, (size_t)amount);
        f->length += amount;
        return SQLITE_OK;
    }
    int rc = flush(f);
    if (rc != SQLITE_OK) return rc;
    if (amount > WRITE_PIECE) return f->real->pMethods->xWrite(f->real, data, amount, offset);
    if (f->capacity < amount) {
        int size = 256 * 1024;
        while (size < amount) size *= 2;
        unsigned char *fresh = realloc(f->buffer, (size_t)size);
        if (fresh == NULL) return f->real->pMethods->xWrite(f->real, data, amount, offset);
        f->buffer = fresh;
        f->capacity = size;
    }
    memcpy(f->buffer, data, (size_t)amount);
    f->start = offset;
    f->length = amount;
    return SQLITE_OK;
}

static int x_truncate(sqlite3_file *file, sqlite3_int64 size) { FORWARD_AFTER(flush, file, xTruncate(f->real, size)); }

static int x_sync(sqlite3_file *file, int flags) { FORWARD_AFTER(flush, file, xSync(f->real, flags)); }

static int x_file_size(sqlite3_file *file, sqlite3_int64 *size) { FORWARD_AFTER(flush, file, xFileSize(f->real, size)); }

static int x_lock(sqlite3_file *file, int level) {
    GatherFile *f = (GatherFile *)file;
    return f->real->pMethods->xLock(f->real, level);
}

static int x_unlock(sqlite3_file *file, int level) { FORWARD_AFTER(flush, file, xUnlock(f->real, level)); }

static int x_check_reserved_lock(sqlite3_file *file, int *out) {
    GatherFile *f = (GatherFile *)file;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int x_file_control(sqlite3_file *file, int op, void *arg) {
    GatherFile *f = (GatherFile *)file;
    int rc = flush(f);
    if (rc != SQLITE_OK) return rc;
    if (op == SQLITE_FCNTL_VFSNAME) {
        int result = f->real->pMethods->xFileControl(f->real, op, arg);
        if (result == SQLITE_OK) *(char **)arg = sqlite3_mprintf("cloudtap-wal/%z", *(char **)arg);
        return result;
    }
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int x_sector_size(sqlite3_file *file) {
    GatherFile *f = (GatherFile *)file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int x_device_characteristics(sqlite3_file *file) {
    GatherFile *f = (GatherFile *)file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/// Before a shared-memory call on a database file: its connection's WAL writes reach the file.
static int flush_wal(GatherFile *f) {
    int rc = flush(f);
    if (rc == SQLITE_OK && f->wal != NULL) rc = flush(f->wal);
    return rc;
}

static int x_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out) { FORWARD_AFTER(flush_wal, file, xShmMap(f->real, page, size, extend, out)); }

static int x_shm_lock(sqlite3_file *file, int offset, int n, int flags) { FORWARD_AFTER(flush_wal, file, xShmLock(f->real, offset, n, flags)); }

static void x_shm_barrier(sqlite3_file *file) {
    GatherFile *f = (GatherFile *)file;
    // A barrier cannot report an error; a failed write surfaces at the next sync, which
    // fails the commit.
    (void)flush_wal(f);
    f->real->pMethods->xShmBarrier(f->real);
}

static int x_shm_unmap(sqlite3_file *file, int delete_flag) { FORWARD_AFTER(flush_wal, file, xShmUnmap(f->real, delete_flag)); }

static int x_fetch(sqlite3_file *file, sqlite3_int64 offset, int amount, void **out) { FORWARD_AFTER(flush, file, xFetch(f->real, offset, amount, out)); }

static int x_unfetch(sqlite3_file *file, sqlite3_int64 offset, void *page) {
    GatherFile *f = (GatherFile *)file;
    return f->real->pMethods->xUnfetch(f->real, offset, page);
}

static const sqlite3_io_methods gather_methods = {
    3,
    x_close, x_read, x_write, x_truncate, x_sync, x_file_size, x_lock, x_unlock, x_check_reserved_lock,
    x_file_control, x_sector_size, x_device_characteristics,
    x_shm_map, x_shm_lock, x_shm_barrier, x_shm_unmap,
    x_fetch, x_unfetch,
};

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags) {
    (void)vfs;
    GatherFile *f = (GatherFile *)file;
    memset(f, 0, sizeof(GatherFile));
    f->real = (sqlite3_file *)(f + 1);
    int rc = root_vfs->xOpen(root_vfs, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK || f->real->pMethods == NULL) {
        // Nothing opened: SQLite must not call our xClose.
        file->pMethods = NULL;
        return rc;
    }
    // Only files whose methods are at least version 3 (WAL and memory-mapping calls) are
    // wrapped; the default unix VFS gives every file such methods.
    if (f->real->pMethods->iVersion < 3) {
        f->real->pMethods->xClose(f->real);
        file->pMethods = NULL;
        return SQLITE_CANTOPEN;
    }
    file->pMethods = &gather_methods;
    if (flags & SQLITE_OPEN_WAL) {
        // The connection's database file, opened through this VFS too (a WAL is opened only by
        // the connection that opened its database, with the same VFS).
        sqlite3_file *database = sqlite3_database_file_object(name);
        if (database != NULL && database->pMethods == &gather_methods) {
            f->database = (GatherFile *)database;
            f->database->wal = f;
            f->gathering = 1;
        }
    }
    return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) { (void)vfs; return root_vfs->xDelete(root_vfs, name, sync_dir); }
static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) { (void)vfs; return root_vfs->xAccess(root_vfs, name, flags, out); }
static int vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) { (void)vfs; return root_vfs->xFullPathname(root_vfs, name, n, out); }
static void *vfs_dl_open(sqlite3_vfs *vfs, const char *name) { (void)vfs; return root_vfs->xDlOpen(root_vfs, name); }
static void vfs_dl_error(sqlite3_vfs *vfs, int n, char *out) { (void)vfs; root_vfs->xDlError(root_vfs, n, out); }
static void (*vfs_dl_sym(sqlite3_vfs *vfs, void *handle, const char *symbol))(void) { (void)vfs; return root_vfs->xDlSym(root_vfs, handle, symbol); }
static void vfs_dl_close(sqlite3_vfs *vfs, void *handle) { (void)vfs; root_vfs->xDlClose(root_vfs, handle); }
static int vfs_randomness(sqlite3_vfs *vfs, int n, char *out) { (void)vfs; return root_vfs->xRandomness(root_vfs, n, out); }
static int vfs_sleep(sqlite3_vfs *vfs, int micros) { (void)vfs; return root_vfs->xSleep(root_vfs, micros); }
static int vfs_current_time(sqlite3_vfs *vfs, double *out) { (void)vfs; return root_vfs->xCurrentTime(root_vfs, out); }
static int vfs_get_last_error(sqlite3_vfs *vfs, int n, char *out) { (void)vfs; return root_vfs->xGetLastError ? root_vfs->xGetLastError(root_vfs, n, out) : 0; }
static int vfs_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out) { (void)vfs; return root_vfs->xCurrentTimeInt64(root_vfs, out); }

static int registered = SQLITE_ERROR;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void register_once(void) {
    /* Before SQLite initializes: no memory statistics. With them on (the library's default)
     * every sqlite3_malloc and sqlite3_free takes a process-wide mutex to count; a profile of
     * a load run found ~1.5 % of the network process's time in that lock alone, all of it on
     * the writer thread. CloudTap reads no SQLite memory statistics. Refused (SQLITE_MISUSE)
     * if SQLite was initialized already. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    root_vfs = sqlite3_vfs_find(NULL);
    if (root_vfs == NULL) return;
    gather_vfs.iVersion = 2;
    gather_vfs.szOsFile = (int)sizeof(GatherFile) + root_vfs->szOsFile;
    gather_vfs.mxPathname = root_vfs->mxPathname;
    gather_vfs.zName = CLOUDTAP_WAL_VFS;
    gather_vfs.xOpen = vfs_open;
    gather_vfs.xDelete = vfs_delete;
    gather_vfs.xAccess = vfs_access;
    gather_vfs.xFullPathname = vfs_full_pathname;
    gather_vfs.xDlOpen = vfs_dl_open;
    gather_vfs.xDlError = vfs_dl_error;
    gather_vfs.xDlSym = vfs_dl_sym;
    gather_vfs.xDlClose = vfs_dl_close;
    gather_vfs.xRandomness = vfs_randomness;
    gather_vfs.xSleep = vfs_sleep;
    gather_vfs.xCurrentTime = vfs_current_time;
    gather_vfs.xGetLastError = vfs_get_last_error;
    gather_vfs.xCurrentTimeInt64 = vfs_current_time_int64;
    registered = sqlite3_vfs_register(&gather_vfs, 0);
}

int cloudtap_register_wal_vfs(void) {
    pthread_once(&once, register_once);
    return registered;
}

// The system's SQLite (Debian: libsqlite3-dev), used directly by Storage's SQLite engine.
#include <sqlite3.h>

#ifndef CTESTSPAWN_H
#define CTESTSPAWN_H

/* Runs argv[0] (a path) with the arguments argv (NULL-terminated), in `directory` (NULL: this
   process's), its standard input from /dev/null, its standard output and error to the file
   `output` (created or truncated), and no other descriptor of this process; waits for it.
   Returns its exit status, 128 + the number of the signal that ended it, or -1 with errno set
   when it could not be started or waited for. */
int cloudtap_test_run(char *const argv[], const char *output, const char *directory);

#endif

/*
 * rb_log.h - the process log: leveled lines on stderr.
 *
 * Under systemd (JOURNAL_STREAM set and matching stderr) each line carries a "<N>" priority
 * prefix that journald turns into the entry's priority; otherwise lines read
 * "2026-11-27T04:51:21Z rbee-hive warn: message". Thread-safe: one write(2) per line.
 */
#ifndef RB_LOG_H
#define RB_LOG_H

enum rb_log_level { RB_LOG_DEBUG = 0, RB_LOG_INFO = 1, RB_LOG_WARN = 2, RB_LOG_ERROR = 3 };

/* Name the program in each line and set the lowest level printed. RBEE_LOG=debug|info|warn|error
 * overrides `min_level`. */
void rb_log_init(const char *program, enum rb_log_level min_level);
void rb_log(enum rb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define rb_debug(...) rb_log(RB_LOG_DEBUG, __VA_ARGS__)
#define rb_info(...) rb_log(RB_LOG_INFO, __VA_ARGS__)
#define rb_warn(...) rb_log(RB_LOG_WARN, __VA_ARGS__)
#define rb_error(...) rb_log(RB_LOG_ERROR, __VA_ARGS__)

#endif

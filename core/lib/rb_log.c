#include "rb_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "rbee";
static enum rb_log_level log_min = RB_LOG_INFO;
static int log_journal;

/* journald hands services "JOURNAL_STREAM=dev:ino" of the stream it connected to stderr. */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void rb_log_init(const char *program, enum rb_log_level min_level)
{
	log_program = program;
	log_min = min_level;
	const char *env = getenv("RBEE_LOG");
	if (env) {
		static const char *names[] = { "debug", "info", "warn", "error" };
		for (int i = 0; i < 4; i++)
			if (!strcasecmp(env, names[i]))
				log_min = (enum rb_log_level)i;
	}
	log_journal = stderr_is_journal();
}

void rb_log(enum rb_log_level level, const char *fmt, ...)
{
	static const char *names[] = { "debug", "info", "warn", "error" };
	static const int syslog_prio[] = { 7, 6, 4, 3 };
	if (level < log_min)
		return;
	char line[2048];
	int n;
	if (log_journal) {
		n = snprintf(line, sizeof(line), "<%d>", syslog_prio[level]);
	} else {
		char ts[32];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		n = snprintf(line, sizeof(line), "%s %s %s: ", ts, log_program, names[level]);
	}
	va_list ap;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

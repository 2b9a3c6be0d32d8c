/* Files and names through the context's allocator: formatted strings, temp
 * names beside a path (made with the modes a plain mkdir or creat gives),
 * and canonical paths. No umask() calls: the process umask is another
 * thread's too. */
#define _GNU_SOURCE /* getrandom */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shd.h"

char *
shd_vstrprintf(shd_ctx *c, const char *fmt, va_list ap)
{
	return shd_arena_vprintf(c, NULL, fmt, ap);
}

char *
shd_strprintf(shd_ctx *c, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = shd_vstrprintf(c, fmt, ap);
	va_end(ap);
	return s;
}

/* 64 bits for a temp name: the kernel's, else the clock's, mixed
 * (splitmix64) with the pid and the attempt. */
static uint64_t
name_bits(unsigned attempt)
{
	uint64_t x = 0;
	struct timespec ts;

	if (getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x) {
		clock_gettime(CLOCK_REALTIME, &ts);
		x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 16);
	}
	x += 0x9e3779b97f4a7c15ull * (attempt + 1);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

char *
shd_mktemp(shd_ctx *c, const char *path, const char *tag, int *fd)
{
	static const char set[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	char *name = shd_strprintf(c, "%s.%s-XXXXXX", path, tag);
	size_t n;

	if (!name) {
		errno = ENOMEM;
		return NULL;
	}
	n = strlen(name);
	for (unsigned attempt = 0; attempt < 100; attempt++) {
		uint64_t x = name_bits(attempt);
		int rc;
		for (size_t i = n - 6; i < n; i++, x /= sizeof set - 1)
			name[i] = set[x % (sizeof set - 1)];
		if (fd)
			rc = *fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		else
			rc = mkdir(name, 0777);
		if (rc >= 0)
			return name;
		if (errno != EEXIST)
			break;
	}
	int e = errno;
	shd_strfree(c, name);
	errno = e;
	return NULL;
}

char *
shd_realpath(shd_ctx *c, const char *path)
{
	char *libc = realpath(path, NULL), *s;

	if (!libc)
		return NULL;
	/* copied at once: the caller frees through the context */
	s = shd_strdup(c, libc);
	free(libc);
	if (!s)
		errno = ENOMEM;
	return s;
}

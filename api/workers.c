/* Rank models written by several worker processes at once.
 * The plan is decided and read-only when emission starts, so each worker
 * is a fork of this process: it sees the IR, the plan and the mapped
 * weights as they are (copy-on-write, the weights shared), writes its
 * ranks (the i-th rank to write goes to worker i mod jobs) and reports back through a
 * pipe: weight bytes written (progress), each rank's figures, or its error.
 * A rank's bytes do not depend on who writes it, so the output is the same
 * whatever the number of workers.
 * requires: a materialised plan, an empty directory
 * provides: rank{r}.onnx (+ .data) and st[r] of every rank wanted, or the
 *   first error */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workers.h"

enum { MSG_BYTES = 1, MSG_RANK, MSG_ERROR };

typedef struct {
	int32_t kind;
	int32_t rc;
	int64_t rank;
	uint64_t bytes;
	emit_rank_stats st;
	char err[512]; /* MSG_ERROR: the diagnostic, cut */
} msg;

typedef struct {
	int fd;
	uint64_t pending; /* progress not yet sent */
} child;

static int
send_msg(int fd, const msg *m)
{
	const char *p = (const char *)m;
	size_t left = sizeof *m;

	while (left) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		left -= (size_t)n;
	}
	return 0;
}

/* Progress in the child: sent in chunks of 64 MiB or more. */
static void
child_progress(void *ud, uint64_t bytes)
{
	child *ch = ud;
	msg m;

	ch->pending += bytes;
	if (ch->pending < ((uint64_t)64 << 20))
		return;
	memset(&m, 0, sizeof m);
	m.kind = MSG_BYTES;
	m.bytes = ch->pending;
	ch->pending = 0;
	send_msg(ch->fd, &m);
}

static void
run_child(ir_graph *g, const prop_plan *p, const char *dir, const emit_opts *o, const int64_t *list,
          int64_t n, int job, int jobs, int fd)
{
	child ch = {fd, 0};
	emit_opts co = *o;
	msg m;
	int rc = 0;

	co.progress = child_progress;
	co.progress_ud = &ch;
	for (int64_t i = job; i < n && !rc; i += jobs) {
		int64_t r = list[i];
		memset(&m, 0, sizeof m);
		if (!(rc = o->stop ? o->stop(o->stop_ud) : 0))
			rc = emit_rank(g, p, r, dir, &co, &m.st);
		if (rc) {
			m.kind = MSG_ERROR;
			m.rc = rc;
			snprintf(m.err, sizeof m.err, "%s", onnxshard_error(g->ctx));
		} else {
			m.kind = MSG_RANK;
			m.rank = r;
		}
		if (send_msg(fd, &m))
			break;
	}
	if (!rc && ch.pending) {
		memset(&m, 0, sizeof m);
		m.kind = MSG_BYTES;
		m.bytes = ch.pending;
		send_msg(fd, &m);
	}
	_exit(rc ? 1 : 0);
}

int
api_emit_ranks(ir_graph *g, const prop_plan *p, const char *dir, const emit_opts *o, int jobs,
               const uint8_t *want, emit_rank_stats *st)
{
	shd_ctx *c = g->ctx;
	int64_t world = p->mesh->world, n_want = 0;
	int rc = 0;

	for (int64_t r = 0; r < world; r++)
		n_want += !want || want[r];
	if (jobs > n_want)
		jobs = (int)n_want;
	if (jobs <= 1) {
		for (int64_t r = 0; r < world && !rc; r++)
			if ((!want || want[r]) && !(rc = o->stop ? o->stop(o->stop_ud) : 0))
				rc = emit_rank(g, p, r, dir, o, &st[r]);
		return rc;
	}
	/* the ranks to write, in order; worker j takes every jobs-th */
	int64_t *list = shd_calloc(c, (size_t)n_want, sizeof *list);
	if (!list)
		return shd_nomem(c);
	n_want = 0;
	for (int64_t r = 0; r < world; r++)
		if (!want || want[r])
			list[n_want++] = r;
	struct pollfd *fds = shd_calloc(c, (size_t)jobs + 1, sizeof *fds);
	pid_t *pid = shd_calloc(c, (size_t)jobs + 1, sizeof *pid);
	int started = 0;
	if (!fds || !pid) {
		shd_free(c, fds, ((size_t)jobs + 1) * sizeof *fds);
		shd_free(c, pid, ((size_t)jobs + 1) * sizeof *pid);
		shd_free(c, list, (size_t)n_want * sizeof *list);
		return shd_nomem(c);
	}
	fflush(NULL); /* nothing buffered is written twice */
	for (; started < jobs; started++) {
		int pp[2];
		if (pipe(pp)) {
			rc = shd_error(c, ONNXSHARD_EFAIL, "cannot start a writer: %s",
			               strerror(errno));
			break;
		}
		pid[started] = fork();
		if (pid[started] < 0) {
			close(pp[0]);
			close(pp[1]);
			rc = shd_error(c, ONNXSHARD_EFAIL, "cannot start a writer: %s",
			               strerror(errno));
			break;
		}
		if (pid[started] == 0) {
			close(pp[0]);
			for (int j = 0; j < started; j++)
				close(fds[j].fd);
			run_child(g, p, dir, o, list, n_want, started, jobs, pp[1]);
		}
		close(pp[1]);
		fds[started].fd = pp[0];
		fds[started].events = POLLIN;
	}
	/* read every report until every writer is done */
	int open = started;
	while (open > 0) {
		if (poll(fds, (nfds_t)started, 250) < 0 && errno != EINTR)
			break;
		if (!rc && o->stop && (rc = o->stop(o->stop_ud)))
			for (int j = 0; j < started; j++)
				kill(pid[j], SIGTERM); /* interrupted: stop them */
		for (int j = 0; j < started; j++) {
			msg m;
			if (fds[j].fd < 0 || !(fds[j].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(fds[j].fd, &m, sizeof m);
			if (n == (ssize_t)sizeof m) {
				if (m.kind == MSG_BYTES && o->progress)
					o->progress(o->progress_ud, m.bytes);
				else if (m.kind == MSG_RANK && m.rank >= 0 && m.rank < world)
					st[m.rank] = m.st;
				else if (m.kind == MSG_ERROR && !rc) {
					rc = shd_error(c,
					               m.rc == ONNXSHARD_EINPUT ? ONNXSHARD_EINPUT
					                                        : ONNXSHARD_EFAIL,
					               "%s", m.err);
					for (int k = 0; k < started; k++)
						kill(pid[k], SIGTERM); /* the others stop too */
				}
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			close(fds[j].fd); /* end of its reports */
			fds[j].fd = -1;
			open--;
		}
	}
	for (int j = 0; j < started; j++) {
		int status = 0;
		if (fds[j].fd >= 0)
			close(fds[j].fd);
		while (waitpid(pid[j], &status, 0) < 0 && errno == EINTR)
			;
		if (!rc && (!WIFEXITED(status) || WEXITSTATUS(status)))
			rc = shd_error(c, ONNXSHARD_EFAIL, "a writer process failed");
	}
	shd_free(c, fds, ((size_t)jobs + 1) * sizeof *fds);
	shd_free(c, pid, ((size_t)jobs + 1) * sizeof *pid);
	shd_free(c, list, (size_t)n_want * sizeof *list);
	return rc;
}

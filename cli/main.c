/* The onnxshard command: subcommand dispatch, options, exit codes
 * (0 ok, 1 failure while working, 2 bad usage or bad input). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnxshard.h"

static const char usage[] =
        "usage: onnxshard COMMAND [OPTIONS]\n"
        "\n"
        "commands:\n"
        "  shard MODEL --mesh AXES  write per-rank models and a manifest:\n"
        "        --mesh data=2,model=4   the device mesh (named axes, row-major ranks)\n"
        "        -o, --out OUT           output directory (default: MODEL without .onnx + "
        ".shards)\n"
        "        --strategy S            auto[:AXES] (default: search), exhaustive[:AXES],\n"
        "                                data[:AXIS], megatron[:AXIS], a comma list of those\n"
        "                                applied in order (data,auto), or a tactics FILE.json\n"
        "        --dim NAME=SIZE         bind a symbolic dim for planning (repeatable; SIZE\n"
        "                                >= 0); the models keep it symbolic\n"
        "        --collectives onnxshard|ort   collective ops' domain (ort: com.microsoft)\n"
        "        --external-data auto|always|never   weights of 1 KiB or more (auto), all,\n"
        "                                or none in rank{r}.onnx.data (never: refused past\n"
        "                                protobuf's 2 GiB)\n"
        "        --gather-outputs GLOB   assemble the matching graph outputs whole, but for\n"
        "                                their batch split over data (repeatable)\n"
        "        --hardware H            device profile: h100 (default), a100, cpu, or a\n"
        "                                JSON FILE (peak_flops, memory_bandwidth, ...)\n"
        "        --budget T|Np           planning time (2s, 500ms, 1m; default 60s: the search\n"
        "                                stops before it with its best plan) or plans the\n"
        "                                search scores (500p; default 256)\n"
        "        --seed N                the search's seed (default 0)\n"
        "        --force                 replace an existing OUT\n"
        "        --json                  the plan summary as JSON\n"
        "        --report FILE.html      also the plan as one self-contained HTML page\n"
        "        --jobs N                processes writing rank models (default 2 on a\n"
        "                                machine of 2 cores or more); the same bytes\n"
        "        --rank R[,R...]         write only these ranks' files (the same bytes, the\n"
        "                                full manifest, others marked \"written\": false);\n"
        "                                OUT may exist: processes writing their own ranks\n"
        "                                into one OUT each add theirs\n"
        "        --quiet                 no progress or warnings on stderr (progress is\n"
        "                                shown only on a terminal); the plan's summary still\n"
        "                                goes to stdout (with --json: the JSON alone)\n"
        "        --max-model-bytes SIZE  refuse a larger model, protobuf and external data\n"
        "                                together for shard, protobuf only for plan\n"
        "                                (512M, 2G; default 2T + 2G)\n"
        "        --max-nodes N           refuse a model of more nodes (default 1000000)\n"
        "                                SIGINT or SIGTERM: the run stops, OUT is not made\n"
        "  plan MODEL --mesh AXES   the same options, no output: the plan's summary\n"
        "  inspect MODEL [--json]   ops, opsets, inputs, outputs, parameters, external data;\n"
        "                           --json adds every value's dtype and shape\n"
        "          [--dump ir]      the lifted IR: shapes, folded shape values, op rules\n"
        "          [--max-model-bytes SIZE] [--max-nodes N]   as for shard\n"
        "  analyze MODEL [--json]   dimension classes, conflicts, opaque ops, decision groups\n"
        "                           and the decision space before and after grouping layers\n"
        "          [--max-model-bytes SIZE] [--max-nodes N]   as for shard\n"
        "  check OUT                manifest, checksums, rank models and collectives of an\n"
        "                           output directory\n"
        "  stitch OUT -o FILE       one model of all ranks, collectives as standard ops\n"
        "                           (large initializers in FILE.data), to verify in any runtime\n"
        "\n"
        "options:\n"
        "  -h, --help               this help\n"
        "  -V, --version            print the version\n"
        "\n"
        "Exit status: 0 ok, 1 failure while working, 2 bad usage or bad input.\n";

/* `onnxshard CMD --help`: CMD's block of the help above; plan's is
 * followed by shard's options, which it takes. */
static void
command_help(const char *cmd)
{
	char key[32];
	int n = snprintf(key, sizeof key, "\n  %s ", cmd);
	const char *s = strstr(usage, key);

	if (!s || n <= 0 || (size_t)n >= sizeof key) {
		fputs(usage, stdout);
		return;
	}
	s++;
	size_t len = 0;
	/* to the next command's line (two spaces, then a letter) or the end
	 * of the commands */
	while (s[len] && !(s[len] == '\n' && (s[len + 1] != ' ' || s[len + 3] != ' ')))
		len++;
	fputs("usage: onnxshard ", stdout);
	fwrite(s + 2, 1, len - 1, stdout);
	if (!strcmp(cmd, "plan")) {
		const char *sh = strstr(usage, "\n  shard "), *o = sh ? strchr(sh + 1, '\n') : NULL;
		if (o) {
			fputs("\noptions, as for shard (-o, --force, --jobs and the output's "
			      "options "
			      "do nothing):\n",
			      stdout);
			len = 0;
			while (o[len + 1] &&
			       !(o[len + 1] == '\n' && (o[len + 2] != ' ' || o[len + 4] != ' ')))
				len++;
			fwrite(o + 1, 1, len + 1, stdout);
		}
	}
	puts("\nExit status: 0 ok, 1 failure while working, 2 bad usage or bad input.");
}

static int
fail_usage(const char *fmt, const char *arg)
{
	fputs("onnxshard: error: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs(" (see onnxshard --help)\n", stderr);
	return ONNXSHARD_EINPUT;
}

/* "2s", "500ms", "1.5m", "1h", "90" (seconds) -> milliseconds; 0 when bad. */
static uint64_t
parse_duration(const char *s)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = {{"", 1000}, {"s", 1000}, {"ms", 1}, {"m", 60000}, {"h", 3600000}};
	char *end;
	double v;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end != s + strspn(s, "0123456789.")) /* no exponent, no hex */
		return 0;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		double ms = v * units[i].ms;
		if (!strcmp(end, units[i].unit))
			return ms >= 1 && ms <= 1e12 ? (uint64_t)ms : 0;
	}
	return 0;
}

/* "4096", "64k", "512M", "2G", "1T" (also "2GiB", "2GB": powers of 1024)
 * -> bytes; 0 when bad. */
static uint64_t
parse_size(const char *s)
{
	static const char suffix[] = "kmgt";
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return 0;
	if (*end && strchr(suffix, end[0] | 0x20)) {
		for (const char *p = suffix; *p != (end[0] | 0x20); p++)
			mult *= 1024;
		mult *= 1024;
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
	} else if (!strcmp(end, "B")) {
		end++;
	}
	if (*end || v == 0 || v > UINT64_MAX / mult)
		return 0;
	return v * mult;
}

/* --max-model-bytes ('B') and --max-nodes ('N') of every command that
 * reads a model, into lim[0] and lim[1] (for onnxshard_set_limits); 0 when
 * arg is good, else the usage status (message printed). */
static int
limit_opt(int ch, const char *arg, uint64_t lim[2])
{
	char *end;

	if (ch == 'B' && !(lim[0] = parse_size(arg)))
		return fail_usage("--max-model-bytes: '%s' is not a size (e.g. 512M, 2G)", arg);
	if (ch == 'N') {
		errno = 0;
		unsigned long long v = strtoull(arg, &end, 10);
		if (*arg < '0' || *arg > '9' || errno || *end || v == 0 || v > UINT32_MAX)
			return fail_usage("--max-nodes: '%s' is not a positive number of nodes",
			                  arg);
		lim[1] = v;
	}
	return 0;
}

/* --rank "1,2" -> *v (n of them; malloc'd); 0 when arg is good, else the
 * usage status (message printed). The library checks them against the mesh. */
static int
rank_opt(const char *arg, int64_t **v, size_t *n)
{
	const char *p = arg;
	char *end;

	*n = 0;
	if (!(*v = calloc(strlen(arg) / 2 + 1, sizeof **v))) /* a rank a digit and a comma */
		return fail_usage("%s", "out of memory");
	for (;;) {
		errno = 0;
		long long r = strtoll(p, &end, 10);
		if (*p < '0' || *p > '9' || errno || (*end && (*end != ',' || !end[1])))
			return fail_usage("--rank: '%s' is not a list of ranks (e.g. 0 or 1,2)",
			                  arg);
		(*v)[(*n)++] = r;
		if (!*end)
			return 0;
		p = end + 1;
	}
}

/* SIGINT/SIGTERM during shard and plan: the first asks the library to stop
 * (it polls `interrupted`, removes its temp dir and fails); a second one of
 * the same kills as usual. */
static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	if (interrupted) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	interrupted = 1;
}

static int
report(onnxshard_ctx *c, int rc)
{
	if (rc)
		fprintf(stderr, "onnxshard: error: %s\n", onnxshard_error(c));
	return rc;
}

/* inspect and analyze: a report on one model (--json; inspect also --dump ir). */
static int
cmd_model(onnxshard_ctx *c, int argc, char **argv, int analyze)
{
	/* --dump first: analyze's options are the rest */
	static const struct option opts[] = {
	        {"dump", required_argument, NULL, 'd'},
	        {"json", no_argument, NULL, 'j'},
	        {"max-model-bytes", required_argument, NULL, 'B'},
	        {"max-nodes", required_argument, NULL, 'N'},
	        {"help", no_argument, NULL, 'h'},
	        {0, 0, 0, 0},
	};
	int json = 0, ch, rc;
	uint64_t lim[2] = {0, 0};

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "jh", opts + analyze, NULL)) != -1) {
		switch (ch) {
		case 'j': json = 1; break;
		case 'd':
			if (strcmp(optarg, "ir") != 0)
				return fail_usage("--dump: unknown dump '%s' (known: ir)", optarg);
			json = ONNXSHARD_DUMP_IR;
			break;
		case 'B':
		case 'N':
			if ((rc = limit_opt(ch, optarg, lim)))
				return rc;
			break;
		case 'h': command_help(analyze ? "analyze" : "inspect"); return 0;
		default:
			return fail_usage(analyze ? "analyze: unknown option '%s'"
			                          : "inspect: unknown option '%s'",
			                  argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return fail_usage("%s needs exactly one MODEL", analyze ? "analyze" : "inspect");
	onnxshard_set_limits(c, lim[0], lim[1]);
	return report(c, analyze ? onnxshard_analyze(c, argv[optind], json, stdout)
	                         : onnxshard_inspect(c, argv[optind], json, stdout));
}

static int
cmd_check(onnxshard_ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	        {"help", no_argument, NULL, 'h'},
	        {0, 0, 0, 0},
	};
	int ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 'h': command_help("check"); return 0;
		default: return fail_usage("check: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return fail_usage("%s", "check needs exactly one output directory OUT");
	return report(c, onnxshard_check(c, argv[optind], stdout));
}

static int
cmd_stitch(onnxshard_ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	        {"out", required_argument, NULL, 'o'},
	        {"help", no_argument, NULL, 'h'},
	        {0, 0, 0, 0},
	};
	const char *out = NULL;
	int ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'o': out = optarg; break;
		case 'h': command_help("stitch"); return 0;
		default:
			if (optopt == 'o')
				return fail_usage("%s", "stitch: -o needs a FILE");
			return fail_usage("stitch: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return fail_usage("%s", "stitch needs exactly one output directory OUT");
	if (!out || !*out)
		return fail_usage("%s", "stitch needs -o FILE");
	return report(c, onnxshard_stitch(c, argv[optind], out));
}

/* One option of shard or plan that takes a checked value (--jobs,
 * --hardware, --budget, --max-*, --seed, --report) into o (lim: the
 * limits): 0, or the usage failure's status (its line printed). */
static int
value_opt(int ch, const char *arg, onnxshard_opts *o, uint64_t *lim)
{
	switch (ch) {
	case 'J': {
		char *end;
		long n = strtol(arg, &end, 10);
		if (*end || end == arg || n < 1 || n > 256) {
			return fail_usage("--jobs: '%s' is not a number of processes (1 to 256)",
			                  arg);
		}
		o->jobs = (int)n;
		return 0;
	}
	case 'H':
		if (strcmp(arg, "h100") && strcmp(arg, "a100") && strcmp(arg, "cpu") &&
		    access(arg, R_OK) != 0) {
			return fail_usage("--hardware: '%s' is neither a preset (h100, a100, "
			                  "cpu) nor a readable file",
			                  arg);
		}
		o->hardware = arg;
		return 0;
	case 'b':
		if (*arg && arg[strlen(arg) - 1] == 'p') { /* plans */
			char *end;
			errno = 0;
			unsigned long n = strtoul(arg, &end, 10);
			if (errno || end == arg || *end != 'p' || end[1] || n < 1 || n > 10000000) {
				return fail_usage("--budget: '%s' is not a number of plans "
				                  "(e.g. 500p)",
				                  arg);
			}
			o->budget_plans = (uint32_t)n;
		} else if (!(o->budget_ms = parse_duration(arg))) {
			return fail_usage("--budget: '%s' is not a duration (e.g. 2s, 500ms, 1m)",
			                  arg);
		}
		return 0;
	case 'B':
	case 'N': return limit_opt(ch, arg, lim);
	case 'S': {
		char *end;
		errno = 0;
		o->seed = strtoull(arg, &end, 10);
		if (errno || end == arg || *end || *arg == '-') {
			return fail_usage("--seed: '%s' is not a non-negative integer", arg);
		}
		return 0;
	}
	case 'R':
		if (!*arg) {
			return fail_usage("%s", "--report needs a FILE");
		}
		o->report_html = arg;
		return 0;
	}
	return 0;
}

/* shard and plan share their options; plan writes nothing. */
static int
cmd_shard(onnxshard_ctx *c, int argc, char **argv, int plan_only)
{
	static const struct option opts[] = {
	        {"mesh", required_argument, NULL, 'm'},
	        {"out", required_argument, NULL, 'o'},
	        {"strategy", required_argument, NULL, 's'},
	        {"dim", required_argument, NULL, 'd'},
	        {"collectives", required_argument, NULL, 'C'},
	        {"gather-outputs", required_argument, NULL, 'G'},
	        {"external-data", required_argument, NULL, 'E'},
	        {"jobs", required_argument, NULL, 'J'},
	        {"rank", required_argument, NULL, 'r'},
	        {"hardware", required_argument, NULL, 'H'},
	        {"budget", required_argument, NULL, 'b'},
	        {"seed", required_argument, NULL, 'S'},
	        {"force", no_argument, NULL, 'f'},
	        {"json", no_argument, NULL, 'j'},
	        {"report", required_argument, NULL, 'R'},
	        {"quiet", no_argument, NULL, 'q'},
	        {"max-model-bytes", required_argument, NULL, 'B'},
	        {"max-nodes", required_argument, NULL, 'N'},
	        {"help", no_argument, NULL, 'h'},
	        {0, 0, 0, 0},
	};
	onnxshard_opts o = {0};
	int64_t *ranks = NULL;
	const char *cmd = argv[0], *rank_arg = NULL;
	char *defout = NULL;
	int ch, rc;
	uint64_t lim[2] = {0, 0};

	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	o.jobs = ncpu > 1 ? 2 : 1; /* the command writes ranks on two cores */
	o.dims = calloc((size_t)argc + 1, sizeof *o.dims);
	o.gather_outputs = calloc((size_t)argc + 1, sizeof *o.gather_outputs);
	if (!o.dims || !o.gather_outputs) {
		free(o.dims), free(o.gather_outputs);
		return report(c, ONNXSHARD_EFAIL);
	}
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "m:o:s:d:qh", opts, NULL)) != -1) {
		switch (ch) {
		case 'm': o.mesh = optarg; break;
		case 'o': o.out = optarg; break;
		case 's': o.strategy = optarg; break;
		case 'd': o.dims[o.n_dims++] = optarg; break;
		case 'C': o.collectives = optarg; break;
		case 'G': o.gather_outputs[o.n_gather_outputs++] = optarg; break;
		case 'E': o.external_data = optarg; break;
		case 'r': rank_arg = optarg; break;
		case 'J':
		case 'H':
		case 'b':
		case 'B':
		case 'N':
		case 'S':
		case 'R':
			if ((rc = value_opt(ch, optarg, &o, lim))) {
				free(o.dims), free(o.gather_outputs);
				return rc;
			}
			break;
		case 'f': o.force = 1; break;
		case 'j': o.json = 1; break;
		case 'q': o.quiet = 1; break;
		case 'h':
			command_help(cmd);
			free(o.dims), free(o.gather_outputs);
			return 0;
		default:
			free(o.dims), free(o.gather_outputs);
			return fail_usage("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1) {
		free(o.dims), free(o.gather_outputs);
		return fail_usage("%s needs exactly one MODEL", cmd);
	}
	o.model = argv[optind];
	onnxshard_set_limits(c, lim[0], lim[1]);
	if (!o.mesh) {
		free(o.dims), free(o.gather_outputs);
		return fail_usage("%s needs --mesh (e.g. --mesh data=2,model=4)", cmd);
	}
	if (plan_only) {
		o.out = NULL;
	} else if (!o.out) {
		size_t n = strlen(o.model);
		if (n > 5 && !strcmp(o.model + n - 5, ".onnx"))
			n -= 5;
		if ((defout = malloc(n + 8))) {
			memcpy(defout, o.model, n);
			strcpy(defout + n, ".shards");
		}
		o.out = defout;
	}
	if (rank_arg && (rc = rank_opt(rank_arg, &ranks, &o.n_ranks))) {
		free(ranks), free(defout);
		free(o.dims), free(o.gather_outputs);
		return rc;
	}
	o.ranks = ranks;
	o.report = stdout;
	o.cancel = &interrupted;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART; /* writes go on; the library polls the flag */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = report(c, onnxshard_shard(c, &o));
	free(ranks);
	free(defout);
	free(o.dims), free(o.gather_outputs);
	return rc;
}

int
main(int argc, char **argv)
{
	onnxshard_ctx *c;
	int rc;

	if (argc < 2)
		return fail_usage("%s", "no command given");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("onnxshard %s (ONNX opsets %d to %d)\n", ONNXSHARD_VERSION,
		       ONNXSHARD_OPSET_MIN, ONNXSHARD_OPSET_MAX);
		return 0;
	}
	/* past `ulimit -f` a write fails with EFBIG, a clean error, rather
	 * than the signal killing the run and leaving its temp dir */
	signal(SIGXFSZ, SIG_IGN);
	if (!(c = onnxshard_new(NULL, NULL, 0))) {
		fputs("onnxshard: error: out of memory\n", stderr);
		return ONNXSHARD_EFAIL;
	}
	if (!strcmp(argv[1], "shard") || !strcmp(argv[1], "plan"))
		rc = cmd_shard(c, argc - 1, argv + 1, argv[1][0] == 'p');
	else if (!strcmp(argv[1], "inspect"))
		rc = cmd_model(c, argc - 1, argv + 1, 0);
	else if (!strcmp(argv[1], "analyze"))
		rc = cmd_model(c, argc - 1, argv + 1, 1);
	else if (!strcmp(argv[1], "check"))
		rc = cmd_check(c, argc - 1, argv + 1);
	else if (!strcmp(argv[1], "stitch"))
		rc = cmd_stitch(c, argc - 1, argv + 1);
	else
		rc = fail_usage("unknown command '%s'", argv[1]);
	if (fflush(stdout) != 0 && !rc) {
		fputs("onnxshard: error: cannot write output\n", stderr);
		rc = ONNXSHARD_EFAIL;
	}
	onnxshard_free(c);
	return rc;
}

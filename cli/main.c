/* The onnxshard command: subcommand dispatch, options, exit codes
 * (0 ok, 1 failure while working, 2 bad usage or bad input). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxshard.h"

static const char usage[] =
	"usage: onnxshard COMMAND [OPTIONS]\n"
	"\n"
	"commands:\n"
	"  inspect MODEL [--json]   ops, opsets, inputs, outputs, parameters, external data;\n"
	"                           --json adds every value's dtype and shape\n"
	"          [--dump ir]      the lifted IR: shapes, folded shape values, op rules\n"
	"\n"
	"options:\n"
	"  -h, --help               this help\n"
	"  -V, --version            print the version\n"
	"\n"
	"Exit status: 0 ok, 1 failure while working, 2 bad usage or bad input.\n";

static int
fail_usage(const char *fmt, const char *arg)
{
	fputs("onnxshard: error: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs(" (see onnxshard --help)\n", stderr);
	return ONNXSHARD_EINPUT;
}

static int
report(onnxshard_ctx *c, int rc)
{
	if (rc)
		fprintf(stderr, "onnxshard: error: %s\n", onnxshard_error(c));
	return rc;
}

static int
cmd_inspect(onnxshard_ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"dump", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	int json = 0, ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'j': json = 1; break;
		case 'd':
			if (strcmp(optarg, "ir") != 0)
				return fail_usage("--dump: unknown dump '%s' (known: ir)", optarg);
			json = ONNXSHARD_DUMP_IR;
			break;
		case 'h': fputs(usage, stdout); return 0;
		default: return fail_usage("inspect: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return fail_usage("%s", "inspect needs exactly one MODEL");
	return report(c, onnxshard_inspect(c, argv[optind], json, stdout));
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
		puts("onnxshard " ONNXSHARD_VERSION);
		return 0;
	}
	if (!(c = onnxshard_new(NULL, NULL, 0))) {
		fputs("onnxshard: error: out of memory\n", stderr);
		return ONNXSHARD_EFAIL;
	}
	if (!strcmp(argv[1], "inspect"))
		rc = cmd_inspect(c, argc - 1, argv + 1);
	else
		rc = fail_usage("unknown command '%s'", argv[1]);
	if (fflush(stdout) != 0 && !rc) {
		fputs("onnxshard: error: cannot write output\n", stderr);
		rc = ONNXSHARD_EFAIL;
	}
	onnxshard_free(c);
	return rc;
}

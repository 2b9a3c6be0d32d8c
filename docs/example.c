/* Using libonnxshard from C: plan a model, shard it, check the result.
 *
 *   cc example.c $(pkg-config --cflags --libs onnxshard) -o example
 *   ./example MODEL OUTDIR [MESH]
 *
 * Built and run by tests/lib_example.sh against an installed copy. */
#include <stdio.h>
#include <stdlib.h>

#include <onnxshard.h>

int
main(int argc, char **argv)
{
	const char *dims[] = {"batch=8"};
	onnxshard_opts o = {0};
	onnxshard_ctx *c;
	int rc;

	if (argc < 3 || argc > 4) {
		fputs("usage: example MODEL OUTDIR [MESH]\n", stderr);
		return ONNXSHARD_EINPUT;
	}
	/* the C library's allocator, seed 0; NULL only when out of memory */
	if (!(c = onnxshard_new(NULL, NULL, 0))) {
		fputs("example: out of memory\n", stderr);
		return ONNXSHARD_EFAIL;
	}

	/* plan: out NULL writes nothing; the summary goes to report */
	o.model = argv[1];
	o.mesh = argc > 3 ? argv[3] : "data=2";
	o.dims = dims;
	o.n_dims = 1;
	o.quiet = 1;
	o.json = 1;
	o.report = stdout;
	if ((rc = onnxshard_shard(c, &o)))
		goto fail;

	/* shard: the same options with an output directory, no report */
	o.out = argv[2];
	o.report = NULL;
	o.force = 1;
	if ((rc = onnxshard_shard(c, &o)))
		goto fail;

	/* check: "ok: N ranks, C collectives, B bytes" */
	if ((rc = onnxshard_check(c, argv[2], stdout)))
		goto fail;
	onnxshard_free(c);
	return 0;
fail:
	/* the message is the context's: valid until its next call or free */
	fprintf(stderr, "example: %s\n", onnxshard_error(c));
	onnxshard_free(c);
	return rc;
}

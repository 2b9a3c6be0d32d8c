/* Hardware profiles: the built-in presets (h100, a100, cpu) and JSON profile
 * files, for the simulator (cost.c).
 * requires: a preset name or a readable JSON file
 * provides: a search_hw with every field set; a bad file is bad input
 *   (ONNXSHARD_EINPUT) with a diagnostic naming the key */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "search/cost.h"

typedef struct {
	const char *name;
	double fp32, fp16, bf16, fp64;
	double mem_bw, mem_cap;
	int64_t devices_per_node;
	double intra_bw, intra_lat, inter_bw, inter_lat, op_overhead;
} preset;

/* Public datasheet figures (dense, no sparsity). cpu: this machine's kind,
 * one core of ONNX Runtime on an AMD EPYC VM: float32 FLOP/s as a 1024^3
 * MatMul measures it, memory bandwidth and per-op overhead as
 * tests/sim_validate.py --calibrate fits them on small (cache-resident)
 * models (a DRAM-bound 64 MiB Add streams ~6e9 B/s); its "links" are
 * loopback-slow guesses. */
static const preset presets[] = {
        /* H100 SXM: NVLink 4 450 GB/s per direction, 8 per node, 400 Gb/s IB */
        {"h100", 6.7e13, 9.9e14, 9.9e14, 3.4e13, 3.35e12, 8.0e10, 8, 4.5e11, 8e-6, 5.0e10, 2.0e-5,
         0},
        /* A100 SXM 80GB: NVLink 3 300 GB/s, 8 per node, 200 Gb/s IB */
        {"a100", 1.95e13, 3.12e14, 3.12e14, 9.7e12, 2.0e12, 8.0e10, 8, 3.0e11, 8e-6, 2.5e10, 2.0e-5,
         0},
        {"cpu", 2.0e11, 1.0e10, 1.0e10, 1.0e11, 5.0e10, 24.0 * 1024 * 1024 * 1024, 1, 5.0e9, 5.0e-5,
         1.0e9, 1.0e-4, 5.0e-7},
};

static void
fill_dtypes(search_hw *hw, double fp32)
{
	for (int d = 0; d < SEARCH_DTYPES; d++)
		hw->peak_flops[d] = fp32;
}

static int
load_preset(shd_ctx *c, const preset *ps, search_hw *hw)
{
	fill_dtypes(hw, ps->fp32);
	hw->peak_flops[onnx_dtype_from_name("float16")] = ps->fp16;
	hw->peak_flops[onnx_dtype_from_name("bfloat16")] = ps->bf16;
	hw->peak_flops[onnx_dtype_from_name("float64")] = ps->fp64;
	hw->mem_bw = ps->mem_bw;
	hw->mem_cap = ps->mem_cap;
	hw->devices_per_node = ps->devices_per_node;
	hw->intra_bw = ps->intra_bw;
	hw->intra_lat = ps->intra_lat;
	hw->inter_bw = ps->inter_bw;
	hw->inter_lat = ps->inter_lat;
	hw->op_overhead = ps->op_overhead;
	if (!(hw->name = shd_strdup(c, ps->name)))
		return shd_nomem(c);
	return 0;
}

/* A number at key (parent.key when in a sub-object): > 0, or >= 0 when
 * zero_ok; absent: *x untouched when optional, else an error. */
static int
number(shd_ctx *c, const char *file, json_t *o, const char *parent, const char *key, int zero_ok,
       int optional, double *x)
{
	json_t *v = json_object_get(o, key);
	const char *dot = parent ? "." : "";

	if (!parent)
		parent = "";
	if (!v) {
		if (optional)
			return 0;
		return shd_error(c, ONNXSHARD_EINPUT, "%s: key '%s%s%s': missing", file, parent,
		                 dot, key);
	}
	double d = json_is_number(v) ? json_number_value(v) : NAN;
	if (!isfinite(d) || d < 0 || (d == 0 && !zero_ok))
		return shd_error(c, ONNXSHARD_EINPUT, "%s: key '%s%s%s': must be a %s number", file,
		                 parent, dot, key, zero_ok ? "non-negative" : "positive");
	*x = d;
	return 0;
}

static int
link_of(shd_ctx *c, const char *file, json_t *root, const char *key, double *bw, double *lat)
{
	json_t *o = json_object_get(root, key);
	int rc;

	if (!o)
		return shd_error(c, ONNXSHARD_EINPUT, "%s: key '%s': missing", file, key);
	if (!json_is_object(o))
		return shd_error(c, ONNXSHARD_EINPUT,
		                 "%s: key '%s': must be an object {\"bandwidth\", \"latency\"}",
		                 file, key);
	if ((rc = number(c, file, o, key, "bandwidth", 0, 0, bw)))
		return rc;
	return number(c, file, o, key, "latency", 1, 0, lat);
}

static int
load_file(shd_ctx *c, const char *file, search_hw *hw)
{
	json_error_t err;
	json_t *root, *v, *pf;
	const char *key;
	int rc = 0;

	errno = 0;
	if (!(root = json_load_file(file, JSON_REJECT_DUPLICATES, &err))) {
		if (err.line < 0 || errno == ENOENT)
			return shd_error(
			        c, ONNXSHARD_EINPUT,
			        "%s: not a hardware preset (h100, a100, cpu) nor a readable "
			        "profile file",
			        file);
		return shd_error(c, ONNXSHARD_EINPUT, "%s: line %d: not JSON: %s", file, err.line,
		                 err.text);
	}
	if (!json_is_object(root)) {
		rc = shd_error(c, ONNXSHARD_EINPUT, "%s: a hardware profile must be a JSON object",
		               file);
		goto out;
	}
	v = json_object_get(root, "name");
	if (!v || !json_is_string(v) || !json_string_length(v)) {
		rc = shd_error(c, ONNXSHARD_EINPUT, "%s: key 'name': %s", file,
		               v ? "must be a non-empty string" : "missing");
		goto out;
	}
	pf = json_object_get(root, "peak_flops");
	if (!pf || !json_is_object(pf)) {
		rc = shd_error(c, ONNXSHARD_EINPUT, "%s: key 'peak_flops': %s", file,
		               pf ? "must be an object of FLOP/s by dtype" : "missing");
		goto out;
	}
	double fp32 = 0;
	if ((rc = number(c, file, pf, "peak_flops", "float32", 0, 0, &fp32)))
		goto out;
	fill_dtypes(hw, fp32);
	json_object_foreach(pf, key, v)
	{
		int dt = onnx_dtype_from_name(key);
		if (dt <= 0 || dt >= SEARCH_DTYPES || !onnx_dtype_size(dt)) {
			rc = shd_error(c, ONNXSHARD_EINPUT,
			               "%s: key 'peak_flops.%s': unknown dtype", file, key);
			goto out;
		}
		if ((rc = number(c, file, pf, "peak_flops", key, 0, 0, &hw->peak_flops[dt])))
			goto out;
	}
	if ((rc = number(c, file, root, NULL, "memory_bandwidth", 0, 0, &hw->mem_bw)) ||
	    (rc = number(c, file, root, NULL, "memory_capacity", 0, 0, &hw->mem_cap)))
		goto out;
	v = json_object_get(root, "devices_per_node");
	if (!v || !json_is_integer(v) || json_integer_value(v) < 1) {
		rc = shd_error(c, ONNXSHARD_EINPUT, "%s: key 'devices_per_node': %s", file,
		               v ? "must be a positive integer" : "missing");
		goto out;
	}
	hw->devices_per_node = json_integer_value(v);
	hw->op_overhead = 0;
	if ((rc = link_of(c, file, root, "intra_node", &hw->intra_bw, &hw->intra_lat)) ||
	    (rc = link_of(c, file, root, "inter_node", &hw->inter_bw, &hw->inter_lat)) ||
	    (rc = number(c, file, root, NULL, "op_overhead", 1, 1, &hw->op_overhead)))
		goto out;
	if (!(hw->name = shd_strdup(c, json_string_value(json_object_get(root, "name")))))
		rc = shd_nomem(c);
out:
	json_decref(root);
	return rc;
}

int
search_hw_load(shd_ctx *c, const char *spec, search_hw *hw)
{
	int rc;

	memset(hw, 0, sizeof *hw);
	for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
		if (!strcmp(spec, presets[i].name))
			return load_preset(c, &presets[i], hw);
	if ((rc = load_file(c, spec, hw)))
		search_hw_free(c, hw);
	return rc;
}

void
search_hw_free(shd_ctx *c, search_hw *hw)
{
	shd_strfree(c, hw->name);
	hw->name = NULL;
}

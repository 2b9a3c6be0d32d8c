/* The wire-format pre-scan: message nesting, checked before protobuf-c unpacks.
 * protobuf-c recurses once per nested message, so a model of subgraphs
 * nested thousands deep would overflow the stack inside the unpacker. This
 * scan follows only the fields through which messages can nest without
 * bound (graph -> node -> attribute -> graph, functions, training graphs,
 * and types: sequence/map/optional of a type), with an explicit stack and
 * no allocation; every other field is skipped by its length. */
#include "onnx_impl.h"

#define PB_MAX_NEST (4 * ONNX_MAX_GRAPH_DEPTH + 8) /* messages open at once */

enum {
	PB_NONE,
	PB_MODEL,
	PB_GRAPH,
	PB_NODE,
	PB_ATTR,
	PB_FUNC,
	PB_TRAIN,
	PB_VINFO,
	PB_TYPE,
	PB_TYPE_OF /* TypeProto.Sequence, .Map or .Optional */
};

/* The followed message that field holds in a message of kind msg, or PB_NONE
 * (field numbers from onnx.proto; FunctionProto 11 and 12 are newer
 * schemas' attribute_proto and value_info). */
static int
pb_child(int msg, uint64_t field)
{
	switch (msg) {
	case PB_MODEL:
		return field == 7    ? PB_GRAPH
		       : field == 20 ? PB_TRAIN
		       : field == 25 ? PB_FUNC
		                     : PB_NONE;
	case PB_GRAPH:
		return field == 1 ? PB_NODE : field >= 11 && field <= 13 ? PB_VINFO : PB_NONE;
	case PB_NODE: return field == 5 ? PB_ATTR : PB_NONE;
	case PB_ATTR:
		return field == 6 || field == 11    ? PB_GRAPH
		       : field == 14 || field == 15 ? PB_TYPE
		                                    : PB_NONE;
	case PB_FUNC:
		return field == 7    ? PB_NODE
		       : field == 11 ? PB_ATTR
		       : field == 12 ? PB_VINFO
		                     : PB_NONE;
	case PB_TRAIN: return field == 1 || field == 2 ? PB_GRAPH : PB_NONE;
	case PB_VINFO: return field == 2 ? PB_TYPE : PB_NONE;
	case PB_TYPE: return field == 4 || field == 5 || field == 9 ? PB_TYPE_OF : PB_NONE;
	case PB_TYPE_OF: return field == 1 || field == 2 ? PB_TYPE : PB_NONE;
	default: return PB_NONE;
	}
}

/* A varint at *p, not reading at or past end; 0, or 1 when malformed. */
static int
pb_varint(const uint8_t *buf, size_t end, size_t *p, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return 1;
		uint8_t b = buf[(*p)++];
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return 1;
}

int
onnx_check_nesting(onnx_model *m, const uint8_t *buf, size_t len)
{
	struct {
		size_t end;    /* offset just past this message */
		uint8_t msg;   /* PB_* */
		uint8_t level; /* graph nesting level: 0 for the main graph */
	} st[PB_MAX_NEST];
	size_t n = 1, p = 0;

	st[0].end = len;
	st[0].msg = PB_MODEL;
	st[0].level = 0;
	while (n) {
		size_t end = st[n - 1].end;
		uint64_t key, v;
		if (p == end) {
			n--;
			continue;
		}
		if (pb_varint(buf, end, &p, &key) || key >> 32 || (key >> 3) == 0)
			goto corrupt;
		switch (key & 7) {
		case 0:
			if (pb_varint(buf, end, &p, &v))
				goto corrupt;
			break;
		case 1:
		case 5:
			v = (key & 7) == 1 ? 8 : 4;
			if (end - p < v)
				goto corrupt;
			p += v;
			break;
		case 2: {
			if (pb_varint(buf, end, &p, &v) || v > end - p)
				goto corrupt;
			int child = pb_child(st[n - 1].msg, key >> 3);
			if (child == PB_NONE) {
				p += v;
				break;
			}
			unsigned level =
			        st[n - 1].level + (child == PB_GRAPH && st[n - 1].msg == PB_ATTR);
			if (level > ONNX_MAX_GRAPH_DEPTH)
				return shd_error(m->ctx, ONNXSHARD_EINPUT,
				                 "%s: subgraphs nested deeper than %d levels",
				                 m->path, ONNX_MAX_GRAPH_DEPTH);
			if (n == PB_MAX_NEST)
				return shd_error(
				        m->ctx, ONNXSHARD_EINPUT,
				        "%s: protobuf messages nested deeper than %d levels",
				        m->path, PB_MAX_NEST);
			st[n].end = p + (size_t)v;
			st[n].msg = (uint8_t)child;
			st[n].level = (uint8_t)level;
			n++;
			break;
		}
		default: /* groups (3, 4), which protobuf-c refuses, and 6, 7 */ goto corrupt;
		}
	}
	return 0;
corrupt:
	return shd_error(m->ctx, ONNXSHARD_EINPUT,
	                 "%s: not a valid ONNX model (protobuf parse failed: truncated or corrupt)",
	                 m->path);
}

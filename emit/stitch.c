/* stub */
#include "emit.h"
int
onnxshard_stitch(onnxshard_ctx *c, const char *dir, const char *path)
{
	(void)dir; (void)path;
	return shd_error(c, 1, "todo");
}

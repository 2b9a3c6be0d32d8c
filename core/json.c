/* JSON building that remembers a failed allocation (see json.h). */
#include "json.h"
#include "shd.h"

void
shd_jset(json_t *o, const char *key, json_t *v, int *bad)
{
	if (json_object_set_new(o, key, v))
		*bad |= 1;
}

void
shd_jpush(json_t *a, json_t *v, int *bad)
{
	if (json_array_append_new(a, v))
		*bad |= 1;
}

json_t *
shd_jstr(const char *s, int *bad)
{
	json_t *v = json_string(s);

	if (!v && !shd_is_utf8(s))
		*bad |= 2;
	return v;
}
